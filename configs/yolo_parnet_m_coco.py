_base_ = './_base_/yolo_pafpn_coco.py'

model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='m', out_indices=(1, 2, 3)),
    neck=dict(in_channels=[256, 512, 2048]))
