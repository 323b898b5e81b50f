"""Speed measurement of detectors (network-only, end-to-end, training step), and its report files.

The names below are what the tools run; the parts they are built from (rows, tables, regimes,
timing, workload, ...) are imported from their modules.
"""
from .matrix import PRESETS, read_rows, run_matrix
from .report import write_report
from .runner import run_benchmark
from .settings import BenchmarkSettings, check_settings, load_model_specs
from .training import TrainSettings, check_train_settings, run_training_benchmark

__all__ = [
    'PRESETS', 'BenchmarkSettings', 'TrainSettings', 'check_settings', 'check_train_settings', 'load_model_specs',
    'read_rows', 'run_benchmark', 'run_matrix', 'run_training_benchmark', 'write_report'
]
