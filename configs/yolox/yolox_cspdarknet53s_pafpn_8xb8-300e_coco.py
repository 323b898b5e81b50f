_base_ = '../_base_/yolo_pafpn_coco.py'

# The baseline: YOLOv4-CSP's backbone (depth 64, Mish), strides 8/16/32.
model = dict(
    backbone=dict(_delete_=True, type='CSPDarknet53s', out_indices=(2, 3, 4)),
    neck=dict(in_channels=[256, 512, 1024]))
