_base_ = './fcos_parnet_xl_fpn_gn-head_1x_coco.py'

model = dict(backbone=dict(arch='s'), neck=dict(in_channels=[92, 192, 384, 1280]))
