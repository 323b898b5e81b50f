"""Channel re-ordering used by ParNet's fusion blocks."""
import torch


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: ``(g, C/g)`` channel order becomes ``(C/g, g)``.

    After a grouped convolution it lets every group of the next layer see
    channels from every group of this one.
    """
    batch, channels, height, width = x.shape
    if channels % groups:
        raise ValueError(f'channel_shuffle: {channels} channels do not split into {groups} groups')
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


def interleave_channels(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Concatenate two equally wide maps channel by channel: ``a0, b0, a1, b1, ...``.

    This is ``channel_shuffle(cat([a, b]), 2)``; a following ``groups=2``
    convolution then sees half of each input in each group, so the two sources
    are mixed without the cost of a dense convolution.
    """
    if first.shape != second.shape:
        raise ValueError(f'interleave_channels: shapes differ, {tuple(first.shape)} vs {tuple(second.shape)}')
    return channel_shuffle(torch.cat([first, second], dim=1), 2)
