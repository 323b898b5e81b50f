"""A wall-clock limit on a block of Python code."""
import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional


class TimeLimitExceeded(Exception):
    """The block ran longer than its limit."""


@contextmanager
def time_limit(seconds: Optional[float]) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` (SIGALRM; no limit off the main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeLimitExceeded(f'over the time limit of {seconds:g} s')

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
