# RTMDet-m as mmdet ships it: published box AP 49.1 on COCO val2017 (mmdet's configs/rtmdet/metafile.yml).
# As rtmdet_l_coco.py: random weights in the benchmark, SyncBN as BN.
_base_ = 'mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py'

model = dict(
    backbone=dict(norm_cfg=dict(type='BN')),
    neck=dict(norm_cfg=dict(type='BN')),
    bbox_head=dict(norm_cfg=dict(type='BN')))
