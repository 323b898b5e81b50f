from .backbones import *  # noqa: F401,F403
from .builder import build_detector
from .classifiers import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .reparameterize import fold_conv_module_norms, switch_to_deploy
from .task_modules import *  # noqa: F401,F403

__all__ = ['build_detector', 'fold_conv_module_norms', 'switch_to_deploy']
