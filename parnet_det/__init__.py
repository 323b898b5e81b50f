"""parnet_det: ParNet backbones and detectors on MMDetection 3.x.

Importing the package runs its one registration step (:mod:`parnet_det.registry`):
every module registered into MMDetection's registries, so that configs use it
through ``custom_imports``, and mmengine's checkpoint loading kept safe under
``torch.load(weights_only=True)``.
"""
from .models import switch_to_deploy
from .registry import register_all_modules
from .version import __version__

register_all_modules()

__all__ = ['__version__', 'register_all_modules', 'switch_to_deploy']
