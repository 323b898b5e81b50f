# RetinaNet with ParNet-XL: mmdet's config, only the backbone and the FPN's input widths change.
# FPN takes strides 4/8/16/32 (out_indices 0-3) and, like RetinaNet-R50, starts at stride 8.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['parnet_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[200, 400, 800, 3200]))
