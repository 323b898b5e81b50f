"""ParNet backbones (Non-deep Networks, Goyal et al. 2021) and the CSP variant."""
import math
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from ..layers import CSPParNetStream, DownsamplingBlock, FusionBlock, ParNetStream, ReparamConv
from ..utils import StreamFork

# The official ImageNet presets. num_blocks counts the RepVGG-SSE blocks of each
# stream (the official configs write 5, 6, 6, 1: one more per stream, and one
# final downsampling block).
ARCH_SETTINGS: Dict[str, dict] = {
    's': dict(stream_channels=(92, 192, 384), final_channels=1280, num_blocks=(4, 5, 5)),
    'm': dict(stream_channels=(128, 256, 512), final_channels=2048, num_blocks=(4, 5, 5)),
    'l': dict(stream_channels=(160, 320, 640), final_channels=2560, num_blocks=(4, 5, 5)),
    'xl': dict(stream_channels=(200, 400, 800), final_channels=3200, num_blocks=(4, 5, 5)),
}
_REQUIRED_ARCH_KEYS = {'stream_channels', 'final_channels', 'num_blocks'}
_OPTIONAL_ARCH_KEYS = {'stem_channels'}

# Stride of each output index.
OUT_STRIDES = (4, 8, 16, 32)


def resolve_arch(arch: Union[str, dict]) -> dict:
    """A preset name or a free-form dict -> a complete, checked arch dict."""
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise KeyError(f'unknown ParNet arch {arch!r}; presets: {sorted(ARCH_SETTINGS)}, '
                           f'or a dict with keys {sorted(_REQUIRED_ARCH_KEYS | _OPTIONAL_ARCH_KEYS)}')
        arch = ARCH_SETTINGS[arch]
    arch = dict(arch)
    missing = _REQUIRED_ARCH_KEYS - arch.keys()
    unknown = arch.keys() - _REQUIRED_ARCH_KEYS - _OPTIONAL_ARCH_KEYS
    if missing or unknown:
        raise KeyError(f'ParNet arch dict: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}; '
                       f'expected {sorted(_REQUIRED_ARCH_KEYS)} and optionally {sorted(_OPTIONAL_ARCH_KEYS)}')
    arch['stream_channels'] = tuple(arch['stream_channels'])
    arch['num_blocks'] = tuple(arch['num_blocks'])
    if len(arch['stream_channels']) != 3 or len(arch['num_blocks']) != 3:
        raise ValueError('ParNet has three streams: stream_channels and num_blocks need 3 entries each, '
                         f'got {arch["stream_channels"]} and {arch["num_blocks"]}')
    # As the official network: the stem's first block is at most 64 wide.
    arch.setdefault('stem_channels', min(64, arch['stream_channels'][0]))
    return arch


@MODELS.register_module()
class ParNet(BaseModule):
    """ParNet: three parallel streams at strides 4, 8 and 16, fused, depth 12.

    Topology (the official release's, module names in brackets)::

        image -> stem: 2 downsampling blocks ------------------> stride 4 [stem]
        stride 4  -> stream 1 (RepVGG-SSE x4) -> out 0         [streams.0]
                  -> downsampling -> stride 8                  [stream_entries.0]
        stride 8  -> stream 2 (x5) -> out 1                    [streams.1]
                  -> downsampling -> stride 16                 [stream_entries.1]
        stride 16 -> stream 3 (x5)                             [streams.2]
        out 0 -> downsampling -> fuse with out 1 (stride 2)    [stream1_downsample, fusions.0]
              -> fuse with stream 3 (stride 1) -> out 2        [fusions.1]
              -> downsampling to final width -> out 3          [final_downsample]

    Outputs (``out_indices``):

    - 0: stride 4, ``stream_channels[0]``: stream 1's output.
    - 1: stride 8, ``stream_channels[1]``: stream 2's output.
    - 2: stride 16, ``stream_channels[2]``: all three streams fused.
    - 3: stride 32, ``final_channels``: the official network's feature map
      before global pooling.

    Output sizes are ``ceil(input / stride)`` for any input size.

    Args:
        arch (str | dict): 's', 'm', 'l', 'xl' (see ``ARCH_SETTINGS``) or a
            dict with ``stream_channels`` (3 ints), ``final_channels``,
            ``num_blocks`` (3 ints) and optionally ``stem_channels``
            (default ``min(64, stream_channels[0])``). Defaults to 'xl'.
        out_indices (Sequence[int]): Outputs to return. Defaults to (1, 2, 3).
        frozen_stages (int): Stages to freeze (eval mode, no gradients), -1
            for none. Stage 0 is the stem, 1 stream 1, 2 stream 2 with its
            entry and stream 1's downsampling, 3 stream 3 with its entry and
            both fusions, 4 the final downsampling: ``frozen_stages=k`` freezes
            everything that only feeds outputs ``< k``. Defaults to -1.
        norm_cfg (dict): Norm layers. Defaults to BN.
        act_cfg (dict): Activation. Defaults to SiLU.
        norm_eval (bool): Keep norm layers in eval mode while training (frozen
            statistics, e.g. for small batches). Defaults to False.
        with_cp (bool): Gradient checkpointing of the stream blocks.
            Defaults to False.
        deploy (bool): Build the re-parameterised (inference) form, which a
            checkpoint written by ``tools/reparameterize.py`` loads into.
            Defaults to False.
        parallel_streams (bool): In eval mode on a CUDA input, queue streams 1
            and 2 on side CUDA streams so that the three streams run at the
            same time (see :class:`~parnet_det.models.utils.StreamFork`);
            outputs are identical to the sequential form. Ignored in training,
            on the CPU and while ``torch.compile`` traces the model (one
            compiled graph runs on one stream). An attribute: the inference
            engine switches it on a built model. Defaults to False.
        init_cfg (dict or list[dict], optional): Initialization config, e.g.
            ``dict(type='Pretrained', checkpoint='parnet_xl_imagenet_converted.pth')``.
    """

    stream_cls = ParNetStream

    def __init__(self,
                 arch: Union[str, dict] = 'xl',
                 out_indices: Sequence[int] = (1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='SiLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 deploy: bool = False,
                 parallel_streams: bool = False,
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = resolve_arch(arch)
        self.out_indices = tuple(out_indices)
        if not self.out_indices or not set(self.out_indices) <= set(range(len(OUT_STRIDES))):
            raise ValueError(f'out_indices must be a non-empty subset of 0..3, got {out_indices}')
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f'frozen_stages must be in -1..4, got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.parallel_streams = parallel_streams

        w1, w2, w3 = self.arch['stream_channels']
        common = dict(norm_cfg=norm_cfg, act_cfg=act_cfg, deploy=deploy)
        self.stem = nn.Sequential(
            DownsamplingBlock(3, self.arch['stem_channels'], **common),
            DownsamplingBlock(self.arch['stem_channels'], w1, **common))
        self.stream_entries = nn.ModuleList([
            DownsamplingBlock(w1, w2, **common),
            DownsamplingBlock(w2, w3, **common)])
        self.streams = nn.ModuleList([
            self.stream_cls(width, num, with_cp=with_cp, **common)
            for width, num in zip(self.arch['stream_channels'], self.arch['num_blocks'])])
        self.stream1_downsample = DownsamplingBlock(w1, w2, **common)
        self.fusions = nn.ModuleList([
            FusionBlock(w2, w3, stride=2, **common),
            FusionBlock(w3, w3, stride=1, **common)])
        # Built only when used: an unused module would break DDP without
        # find_unused_parameters. A Pretrained file's extra keys are reported.
        self.final_downsample = (
            DownsamplingBlock(w3, self.arch['final_channels'], **common) if 3 in self.out_indices else None)
        self.out_channels = [self.channels_of(i) for i in self.out_indices]
        self._freeze_stages()

    @property
    def deploy(self) -> bool:
        """Whether every block is in its folded (inference) form."""
        return all(m.deploy for m in self.modules() if isinstance(m, ReparamConv))

    def channels_of(self, index: int) -> int:
        """Channels of output ``index`` (0-3)."""
        return (*self.arch['stream_channels'], self.arch['final_channels'])[index]

    def _stages(self) -> Tuple[Tuple[nn.Module, ...], ...]:
        return ((self.stem,),
                (self.streams[0],),
                (self.stream_entries[0], self.streams[1], self.stream1_downsample),
                (self.stream_entries[1], self.streams[2], self.fusions),
                (self.final_downsample,) if self.final_downsample is not None else ())

    def _freeze_stages(self) -> None:
        for stage in self._stages()[:self.frozen_stages + 1]:
            for module in stage:
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> 'ParNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def _runs_streams_in_parallel(self, x: torch.Tensor) -> bool:
        return (self.parallel_streams and x.is_cuda and not self.training
                and not torch.compiler.is_compiling())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        # Streams 1 and 2 go to side branches 0 and 1 while the current stream
        # computes the entries and stream 3; branch 1 also fuses streams 1 and
        # 2, which overlaps with stream 3. Disabled, this is the sequential form.
        fork = StreamFork(x.device, num_branches=2, enabled=self._runs_streams_in_parallel(x))
        stride4 = self.stem(x)
        with fork.branch(0, stride4):
            stream1 = self.streams[0](stride4)
            stream1_down = self.stream1_downsample(stream1)
        stride8 = self.stream_entries[0](stride4)
        with fork.branch(1, stride8):
            stream2 = self.streams[1](stride8)
            fork.join(0, stream1_down)
            fused = self.fusions[0]((stream2, stream1_down))
        stream3 = self.streams[2](self.stream_entries[1](stride8))
        fork.join(0, stream1)
        fork.join(1, stream2, fused)
        fused = self.fusions[1]((stream3, fused))
        outs = [stream1, stream2, fused]
        if self.final_downsample is not None:
            outs.append(self.final_downsample(fused))
        return tuple(outs[i] for i in self.out_indices)


@MODELS.register_module()
class ParNetCSP(ParNet):
    """ParNet with cross-stage-partial streams (the paper's ParNet-XL-CSP).

    The paper names ParNet-XL-CSP but gives no detail. This design applies
    CSPNet's principle to each stream and nothing else: half of a stream's
    channels run through its RepVGG-SSE blocks (at half width), the other half
    bypass the stream and rejoin it at its end by channel interleaving (see
    :class:`CSPParNetStream`). The stem, the stream entries, the fusions and the
    final downsampling are ParNet's, so the widths, strides and outputs are the
    same as :class:`ParNet` with the same ``arch``, the depth stays 12 (no
    transition layer is added: the fusion and downsampling blocks after the
    streams mix the two halves), and the streams cost a quarter of their
    multiply-adds. Takes the same arguments as :class:`ParNet`.
    """

    stream_cls = CSPParNetStream
