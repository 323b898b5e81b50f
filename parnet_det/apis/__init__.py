from .detector import build_detector
from .runner_config import (dataset_pipeline, default_work_dir, load_config, record_ap_results, resume_checkpoint,
                            set_launcher, set_test_resolution, setup_train_config, use_crash_safe_checkpoints)

__all__ = [
    'build_detector', 'dataset_pipeline', 'default_work_dir', 'load_config', 'record_ap_results',
    'resume_checkpoint', 'set_launcher', 'set_test_resolution', 'setup_train_config', 'use_crash_safe_checkpoints'
]
