from .yolov4_csp_optim_constructor import GROUP_NAMES, YOLOv4CSPOptimWrapperConstructor, parameter_group

__all__ = ['GROUP_NAMES', 'YOLOv4CSPOptimWrapperConstructor', 'parameter_group']
