from .complexity import count_flops, count_flops_by_module, count_parameters
from .depth import measure_depth
from .folding import foldable_norms

__all__ = ['count_flops', 'count_flops_by_module', 'count_parameters', 'foldable_norms', 'measure_depth']
