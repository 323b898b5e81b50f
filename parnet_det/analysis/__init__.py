from .complexity import count_flops, count_flops_by_module, count_parameters
from .depth import measure_depth

__all__ = ['count_flops', 'count_flops_by_module', 'count_parameters', 'measure_depth']
