from .channel_ops import channel_shuffle, interleave_channels
from .csp_layers import BottleneckCSP, DarknetCSPBlock, ResidualBottleneck
from .downsampling_block import DownsamplingBlock
from .fusion_block import FusionBlock
from .implicit_conv import ImplicitA, ImplicitM, ImplicitPredictionConv
from .parnet_stream import CSPParNetStream, ParNetStream
from .rep_vgg_sse_block import RepVGGSSEBlock
from .reparam_conv import ReparamConv, fuse_conv_bn, pad_to_even
from .spp_csp import SPPCSPBlock

__all__ = [
    'channel_shuffle', 'interleave_channels', 'ReparamConv', 'fuse_conv_bn', 'pad_to_even',
    'RepVGGSSEBlock', 'DownsamplingBlock', 'FusionBlock', 'ParNetStream', 'CSPParNetStream',
    'ResidualBottleneck', 'BottleneckCSP', 'DarknetCSPBlock', 'SPPCSPBlock', 'ImplicitA', 'ImplicitM',
    'ImplicitPredictionConv'
]
