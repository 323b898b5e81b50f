"""Deploy checkpoints: a training checkpoint folded once, saved for the folded config."""
import torch

from ..models.builder import build_detector
from ..models.reparameterize import switch_to_deploy
from ..utils.checkpoint import checkpoint_meta, load_checkpoint_file, load_weights_strictly
from ..utils.config import config_files
from ..utils.fileio import atomic_write, check_writable_file


def reparameterize_checkpoint(cfg, checkpoint: str, out: str) -> int:
    """Build ``cfg.model``, load ``checkpoint``, fold it and save the deploy checkpoint to ``out``.

    The written file loads (strictly) into the same config with
    ``deploy=True`` on its ParNet backbone; it appears complete or not at all.
    Every check (``out`` writable, neither input nor a config of its ``_base_`` chain, and if it exists an
    earlier deploy checkpoint; the checkpoint readable, training form,
    fitting the config) comes before the work. Returns the number of folded blocks.
    """
    # An earlier deploy checkpoint is replaced; no other file, and no file of the config's _base_ chain.
    check_writable_file(out, inputs=[checkpoint, *(config_files(cfg.filename) if cfg.filename else [])],
                        own_output=lambda path: checkpoint_meta(path).get('deploy') is True)
    loaded = load_checkpoint_file(checkpoint, map_location='cpu')
    meta = dict(loaded.get('meta') or {})
    if meta.get('deploy'):
        raise ValueError(f'{checkpoint} is already a deploy checkpoint (folded by tools/reparameterize.py from '
                         f'{meta.get("reparameterized_from", "a training checkpoint")}); use it as it is')
    model = build_detector(cfg)  # the file is read once, above: loaded here
    load_weights_strictly(model, loaded, checkpoint)
    folded = switch_to_deploy(model)
    if folded == 0:
        raise ValueError(f'{checkpoint}: the model of this config has no block to fold (not a ParNet model?); '
                         'its conv BatchNorms fold when it is loaded for inference (tools/test.py --deploy, '
                         'tools/infer.py, ONNX export): use the checkpoint as it is')
    meta.update(deploy=True, reparameterized_from=str(checkpoint))
    with atomic_write(out) as f:
        torch.save(dict(state_dict=model.state_dict(), meta=meta), f)
    return folded
