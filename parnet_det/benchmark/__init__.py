"""Speed measurement of detectors (network-only, end-to-end, training step), and its report files."""
from .inputs import pack_images, synthetic_images
from .matrix import BASELINE, MATRIX_MODELS, PRESETS, MatrixPreset, read_rows, run_matrix, write_matrix_reports
from .measurement import build_form
from .regimes import ratio_tables, regime_plots, select_regimes, training_estimates
from .report import benchmark_meta, write_report
from .rows import TRAIN_MODE, add_baseline_ratios, add_variant_speedups, latest_rows, ratio_spread, row_key, verdict
from .runner import format_progress, run_benchmark
from .settings import (
                       FORMS,
                       MMDET_VARIANT,
                       MODES,
                       BenchmarkSettings,
                       ModelSpec,
                       check_forms,
                       check_settings,
                       check_workloads,
                       load_model_specs,
)
from .timing import PRECISIONS, BlockTimer, PeakMemory, check_precisions, interleave, resolve_device
from .training import TrainSettings, check_train_settings, run_training_benchmark
from .workload import ADAPTERS, HeadAdapter, HeadOutputs, control_workload, head_adapter

__all__ = [
    'ADAPTERS', 'BASELINE', 'FORMS', 'MATRIX_MODELS', 'MMDET_VARIANT', 'MODES', 'PRECISIONS', 'PRESETS',
    'TRAIN_MODE', 'BenchmarkSettings', 'BlockTimer', 'HeadAdapter', 'HeadOutputs', 'MatrixPreset', 'ModelSpec',
    'PeakMemory', 'TrainSettings', 'add_baseline_ratios', 'add_variant_speedups', 'benchmark_meta', 'build_form',
    'check_forms', 'check_precisions', 'check_settings', 'check_train_settings', 'check_workloads',
    'control_workload', 'format_progress', 'head_adapter', 'interleave', 'latest_rows', 'load_model_specs',
    'pack_images', 'ratio_spread', 'ratio_tables', 'read_rows', 'regime_plots', 'resolve_device', 'row_key',
    'run_benchmark', 'run_matrix', 'run_training_benchmark', 'select_regimes', 'synthetic_images',
    'training_estimates', 'verdict', 'write_matrix_reports', 'write_report'
]
