from .nominal_batch_optim_wrapper import NominalBatchAmpOptimWrapper, NominalBatchMixin, NominalBatchOptimWrapper
from .yolov4_csp_optim_constructor import GROUP_NAMES, YOLOv4CSPOptimWrapperConstructor, parameter_group

__all__ = [
    'GROUP_NAMES', 'NominalBatchAmpOptimWrapper', 'NominalBatchMixin', 'NominalBatchOptimWrapper',
    'YOLOv4CSPOptimWrapperConstructor', 'parameter_group'
]
