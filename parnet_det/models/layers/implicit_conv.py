"""YOLOR's implicit knowledge around a 1x1 prediction conv, and its folding into that conv."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule


class ImplicitA(nn.Module):
    """YOLOR's additive implicit knowledge: ``x + a``, ``a`` a learned ``[1, C, 1, 1]``, init N(0, 0.02)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.implicit = nn.Parameter(torch.empty(1, channels, 1, 1).normal_(0, 0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.implicit


class ImplicitM(nn.Module):
    """YOLOR's multiplicative implicit knowledge: ``x * m``, ``m`` a learned ``[1, C, 1, 1]``, init N(1, 0.02)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.implicit = nn.Parameter(torch.empty(1, channels, 1, 1).normal_(1, 0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.implicit


class ImplicitPredictionConv(BaseModule):
    """YOLOR's head output: a 1x1 conv with bias between ImplicitA (before) and ImplicitM (after)::

        y = m * (W (x + a) + b) = (m W) x + m (W a + b)

    Both implicit vectors are constants after training, so the block folds into one 1x1 conv with
    weight ``m W`` and bias ``m (W a + b)`` (:meth:`switch_to_deploy`; ``deploy=True`` builds
    that form).

    Args:
        in_channels (int): Input channels (of ``a``).
        out_channels (int): Output channels (of ``m``).
        deploy (bool): Build the folded plain conv. Defaults to False.
    """

    def __init__(self, in_channels: int, out_channels: int, deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        if not deploy:
            self.implicit_a = ImplicitA(in_channels)
            self.implicit_m = ImplicitM(out_channels)

    @property
    def bias(self) -> torch.Tensor:
        """The conv's bias (the head's prior initialisation writes to it)."""
        return self.conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.conv(x)
        return self.implicit_m(self.conv(self.implicit_a(x)))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        scale = self.implicit_m.implicit.reshape(-1)
        weight = self.conv.weight
        shift = weight.flatten(1) @ self.implicit_a.implicit.reshape(-1)
        self.conv.bias.copy_(scale * (self.conv.bias + shift))
        self.conv.weight.copy_(weight * scale.reshape(-1, 1, 1, 1))
        del self.implicit_a, self.implicit_m
        self.deploy = True
