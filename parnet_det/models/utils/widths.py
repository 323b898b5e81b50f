"""Scaled channel widths of the YOLO-family models (``widen_factor``)."""
import math


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Round a scaled width up to a multiple of ``divisor`` (at least ``divisor``)."""
    return max(divisor, int(math.ceil(channels / divisor)) * divisor)
