from .checkpoint_hook import CrashSafeCheckpointHook
from .divergence_hook import DivergenceCheckHook, TrainingDivergedError
from .reparameterize_hook import ReparameterizeHook
from .resume_check_hook import ResumeCheckHook
from .yolov4_csp_lr_hook import YOLOv4CSPLrHook

__all__ = [
    'CrashSafeCheckpointHook', 'DivergenceCheckHook', 'ReparameterizeHook', 'ResumeCheckHook', 'TrainingDivergedError',
    'YOLOv4CSPLrHook'
]
