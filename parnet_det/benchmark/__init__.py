"""Speed measurement of detectors (network-only and end-to-end), and its report files."""
from .detector import (FORMS, MODES, BenchmarkSettings, ModelSpec, build_detector, end_to_end_step,
                       load_model_specs, network_flops_per_image, network_step, pack_images, run_benchmark,
                       synthetic_images)
from .report import add_baseline_ratios, benchmark_meta, write_report
from .timing import PRECISIONS, PeakMemory, check_precisions, resolve_device, time_repeats

__all__ = [
    'FORMS', 'MODES', 'PRECISIONS', 'BenchmarkSettings', 'ModelSpec', 'PeakMemory', 'add_baseline_ratios',
    'benchmark_meta', 'build_detector', 'check_precisions', 'end_to_end_step', 'load_model_specs',
    'network_flops_per_image', 'network_step', 'pack_images', 'resolve_device', 'run_benchmark',
    'synthetic_images', 'time_repeats', 'write_report'
]
