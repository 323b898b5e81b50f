from .stream_fork import StreamFork

__all__ = ['StreamFork']
