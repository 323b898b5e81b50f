from .stream_fork import StreamFork
from .widths import make_divisible

__all__ = ['StreamFork', 'make_divisible']
