from .level_reductions import LevelReductions
from .reduced_pafpn import ReducedYOLOXPAFPN
from .reduced_yolov4_csp_neck import ReducedYOLOv4CSPNeck
from .yolov4_csp_neck import YOLOv4CSPNeck

__all__ = ['LevelReductions', 'ReducedYOLOXPAFPN', 'ReducedYOLOv4CSPNeck', 'YOLOv4CSPNeck']
