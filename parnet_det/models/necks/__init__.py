from .reduced_pafpn import ReducedYOLOXPAFPN
from .yolov4_csp_neck import YOLOv4CSPNeck

__all__ = ['ReducedYOLOXPAFPN', 'YOLOv4CSPNeck']
