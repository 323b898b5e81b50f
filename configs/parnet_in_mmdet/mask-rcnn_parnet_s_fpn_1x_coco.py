_base_ = './mask-rcnn_parnet_xl_fpn_1x_coco.py'

model = dict(backbone=dict(arch='s'), neck=dict(in_channels=[92, 192, 384, 1280]))
