"""What users call: build a detector, run the inference engine or the media inferencer, set up runs."""
from ..models.builder import build_detector
from ..utils.amp import use_amp_where_available, use_fp32
from ..utils.config import load_config
from .inference import init_detector_engine
from .inferencer import MediaInferencer, load_predictor
from .run_checks import (
    add_training_checks,
    exclusive_work_dir,
    run_inputs,
    use_checked_test_model,
)
from .runner_config import (
                            check_show_dir,
                            default_work_dir,
                            record_ap_results,
                            resume_checkpoint,
                            set_launcher,
                            set_test_resolution,
                            set_work_dir,
                            setup_train_config,
                            use_crash_safe_checkpoints,
                            use_official_batches,
)

__all__ = [
    'MediaInferencer', 'add_training_checks', 'build_detector', 'check_show_dir', 'default_work_dir',
    'exclusive_work_dir', 'init_detector_engine', 'load_config', 'load_predictor', 'record_ap_results',
    'resume_checkpoint', 'run_inputs', 'set_launcher', 'set_test_resolution', 'set_work_dir', 'setup_train_config',
    'use_amp_where_available', 'use_checked_test_model', 'use_crash_safe_checkpoints', 'use_fp32',
    'use_official_batches'
]
