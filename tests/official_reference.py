"""An independent, functional evaluation of the official ParNet checkpoint layout.

It reads the official key names directly (no parnet_det module) and follows
the released network's semantics, so that comparing it with ParNetClassifier
on converted weights checks the converter's mapping, the branch order, the
input order of the fusions and the channel interleaving/shuffling.
Only even input sides at every stride are supported, as in the official code.
"""
import csv
import math
import os.path as osp

import torch
import torch.nn.functional as F

REFERENCE_DIR = osp.join(osp.dirname(__file__), 'data', 'official_keys')


def read_official_listing(arch: str):
    with open(osp.join(REFERENCE_DIR, f'official_state_dict_parnet_{arch}.tsv')) as f:
        rows = list(csv.DictReader(f, delimiter='\t'))
    return [(row['key'], () if row['shape'] == 'scalar' else tuple(int(s) for s in row['shape'].split('x')))
            for row in rows]


def make_official_state_dict(arch: str, seed: int = 0):
    """Random weights in the official layout (scaled to keep activations finite)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in read_official_listing(arch):
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(100)
        elif key.endswith('running_var'):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        elif key.endswith('running_mean') or key.endswith('.bias'):
            state[key] = torch.randn(shape, generator=gen) * 0.1
        elif len(shape) == 1:  # BN weight
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            fan_in = math.prod(shape[1:])
            state[key] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return state


def _bn(sd, prefix, x):
    return F.batch_norm(x, sd[prefix + 'running_mean'], sd[prefix + 'running_var'],
                        sd[prefix + 'weight'], sd[prefix + 'bias'], training=False, eps=1e-5)


def _conv_bn(sd, prefix, x, stride, padding, groups):
    return _bn(sd, prefix + 'bn.', F.conv2d(x, sd[prefix + 'conv.weight'], None, stride, padding, 1, groups))


def _block(sd, prefix, x, stride=1, groups=1):
    prefix += 'block.'
    out = _conv_bn(sd, prefix + 'rbr_dense.', x, stride, 1, groups)
    if stride == 2:
        out = out + _conv_bn(sd, prefix + 'rbr_1x1.1.', F.avg_pool2d(x, 2, 2), 1, 0, groups)
    else:
        out = out + _conv_bn(sd, prefix + 'rbr_1x1.', x, 1, 0, groups)
    se = sd[prefix + 'se.cvsig.conv.weight']
    if prefix + 'rbr_identity.weight' in sd:
        skip = _bn(sd, prefix + 'rbr_identity.', x)
        out = out + skip * torch.sigmoid(F.conv2d(skip.mean((2, 3), keepdim=True), se, groups=groups))
    else:
        out = out * 2 * torch.sigmoid(F.conv2d(x.mean((2, 3), keepdim=True), se, groups=groups))
    out = F.silu(out)
    if groups > 1:
        n, c, h, w = out.shape
        out = out.reshape(n, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)
    return out


def _concat_interleaved(a, b):
    n, c, h, w = a.shape
    return torch.stack([a, b], dim=2).reshape(n, 2 * c, h, w)


@torch.no_grad()
def official_forward(sd, x):
    """(stride-32 feature map, logits) of the official network."""
    x = _block(sd, 'inits.0.1.', _block(sd, 'inits.0.0.', x, 2), 2)
    entries = [x]
    for i in (1, 2):
        entries.append(_block(sd, f'inits.{i}.', entries[-1], 2))
    streams = []
    for s, inp in enumerate(entries):
        j = 0
        while f'streams.{s}.{j}.block.rbr_dense.conv.weight' in sd:
            inp = _block(sd, f'streams.{s}.{j}.', inp)
            j += 1
        streams.append(inp)
    fused = _block(sd, 'downsamples_2.0.', streams[0], 2)
    fused = _block(sd, 'downsamples_2.1.2.', _concat_interleaved(
        _bn(sd, 'downsamples_2.1.0.b1.', streams[1]), _bn(sd, 'downsamples_2.1.0.b2.', fused)), 2, 2)
    fused = _block(sd, 'combine.2.', _concat_interleaved(
        _bn(sd, 'combine.0.b1.', streams[2]), _bn(sd, 'combine.0.b2.', fused)), 1, 2)
    features = _block(sd, 'combine.3.', fused, 2)
    return features, F.linear(features.mean((2, 3)), sd['head.fc.weight'], sd['head.fc.bias'])
