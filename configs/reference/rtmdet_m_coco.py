# RTMDet-m as mmdet ships it (published AP: parnet_det/benchmark/published.py).
# As rtmdet_l_coco.py: random weights in the benchmark, SyncBN as BN.
_base_ = 'mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py'

model = dict(
    backbone=dict(norm_cfg=dict(type='BN')),
    neck=dict(norm_cfg=dict(type='BN')),
    bbox_head=dict(norm_cfg=dict(type='BN')))
