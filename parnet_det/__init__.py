"""parnet_det: ParNet backbones and detectors on MMDetection 3.x.

Importing the package registers every module into MMDetection's registries
(so configs use it through ``custom_imports``) and makes mmengine's checkpoint
loading safe under ``torch.load(weights_only=True)``.
"""
from .version import __version__
from .utils.checkpoint import install_safe_checkpoint_loading

install_safe_checkpoint_loading()

from . import datasets, engine, models  # noqa: E402,F401  (registers the modules)
from .deploy import switch_to_deploy  # noqa: E402

__all__ = ['__version__', 'switch_to_deploy']
