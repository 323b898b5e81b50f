from .cspdarknet53s import CSPDarknet53s
from .parnet import ARCH_SETTINGS, ParNet, ParNetCSP

__all__ = ['ARCH_SETTINGS', 'CSPDarknet53s', 'ParNet', 'ParNetCSP']
