"""argparse types shared by the command-line tools."""
import argparse


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
