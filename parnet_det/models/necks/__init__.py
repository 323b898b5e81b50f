from .reduced_pafpn import ReducedYOLOXPAFPN

__all__ = ['ReducedYOLOXPAFPN']
