"""Speed measurement of detectors (network-only and end-to-end), and its report files."""
from .detector import (FORMS, MMDET_VARIANT, MODES, BenchmarkSettings, ModelSpec, build_detector, check_settings,
                       end_to_end_step, load_model_specs, network_flops_per_image, network_step, pack_images,
                       run_benchmark, synthetic_images)
from .report import add_baseline_ratios, add_variant_speedups, benchmark_meta, write_report
from .timing import PRECISIONS, PeakMemory, check_precisions, resolve_device, time_repeats

__all__ = [
    'FORMS', 'MMDET_VARIANT', 'MODES', 'PRECISIONS', 'BenchmarkSettings', 'ModelSpec', 'PeakMemory',
    'add_baseline_ratios', 'add_variant_speedups',
    'benchmark_meta', 'build_detector', 'check_settings', 'check_precisions', 'end_to_end_step', 'load_model_specs',
    'network_flops_per_image', 'network_step', 'pack_images', 'resolve_device', 'run_benchmark',
    'synthetic_images', 'time_repeats', 'write_report'
]
