"""What users call: build a detector, run the inference engine or the media inferencer, set up runs."""
from ..models.builder import build_detector
from ..utils.config import load_config
from .inference import init_detector_engine
from .inferencer import MediaInferencer, load_predictor
from .runner_config import (
                            default_work_dir,
                            record_ap_results,
                            resume_checkpoint,
                            set_launcher,
                            set_test_resolution,
                            setup_train_config,
                            use_crash_safe_checkpoints,
)

__all__ = [
    'MediaInferencer', 'build_detector', 'default_work_dir', 'init_detector_engine', 'load_config', 'load_predictor',
    'record_ap_results', 'resume_checkpoint', 'set_launcher', 'set_test_resolution', 'setup_train_config',
    'use_crash_safe_checkpoints'
]
