# RTMDet-l as mmdet ships it (its config in the mmdet package), for the speed comparison beside the baselines:
# its published AP is quoted in parnet_det/benchmark/published.py, with its source. The benchmark builds it with
# random weights, folded like every model, under the same controlled post-processing workload. SyncBN becomes
# BN: the same folded network, and it builds and trains on one device or the CPU.
_base_ = 'mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py'

model = dict(
    backbone=dict(norm_cfg=dict(type='BN')),
    neck=dict(norm_cfg=dict(type='BN')),
    bbox_head=dict(norm_cfg=dict(type='BN')))
