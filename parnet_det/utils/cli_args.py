"""argparse types and the error exit shared by the command-line tools."""
import argparse
import contextlib
import os
import sys
from typing import Iterator, Type


def path_arg(text: str) -> str:
    """A path argument with ``~`` expanded, as a shell would (it does not in ``--opt=~/x``, nor when quoted).

    The type of every path argument of the tools: without it ``--work-dir=~/w``
    creates a folder named ``~`` in the current directory.
    """
    return os.path.expanduser(text)


def positive_int(text: str) -> int:
    """An integer >= 1, or an argparse error naming the value."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text} is not a positive integer')
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0, or an argparse error naming the value."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text} is negative')
    return value


def positive_float(text: str) -> float:
    """A number > 0, or an argparse error naming the value."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'{text} is not a positive number')
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1] (a score, a fraction), or an argparse error naming the value."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'{text} is not in [0, 1]')
    return value


@contextlib.contextmanager
def user_errors(*error_types: Type[BaseException], exit_code: int = 2) -> Iterator[None]:
    """End the tool with ``error: <message>`` on stderr and ``exit_code`` (2, argparse's) for these errors.

    They are the user's to fix (a wrong path, a bad file, a mismatch), so no
    traceback; any other exception is a bug and keeps its traceback.
    """
    try:
        yield
    except error_types as err:
        # A KeyError's str() is its repr; its message is the first argument.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        sys.exit(exit_code)
