# Faster R-CNN with FPN on ParNet-XL: the FPN uses all four outputs (strides 4/8/16/32).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['parnet_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[200, 400, 800, 3200]))
