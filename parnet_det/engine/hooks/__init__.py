from .checkpoint_hook import CrashSafeCheckpointHook
from .divergence_hook import DivergenceCheckHook, TrainingDivergedError
from .optimizer_step_ema_hook import OptimizerStepEMAHook
from .preemption_hook import PreemptionHook, TrainingPreempted
from .random_state_hook import RandomStateHook
from .reparameterize_hook import ReparameterizeHook
from .resume_check_hook import ResumeCheckHook
from .yolov4_csp_lr_hook import YOLOv4CSPLrHook

__all__ = [
    'CrashSafeCheckpointHook', 'DivergenceCheckHook', 'OptimizerStepEMAHook', 'PreemptionHook', 'RandomStateHook',
    'ReparameterizeHook',
    'ResumeCheckHook', 'TrainingDivergedError', 'TrainingPreempted', 'YOLOv4CSPLrHook'
]
