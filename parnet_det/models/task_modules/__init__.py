from .anchor_ratio_assigner import AnchorRatioAssigner, LevelTargets

__all__ = ['AnchorRatioAssigner', 'LevelTargets']
