from .checkpoint_hook import CrashSafeCheckpointHook
from .reparameterize_hook import ReparameterizeHook

__all__ = ['CrashSafeCheckpointHook', 'ReparameterizeHook']
