_base_ = './_base_/yolo_pafpn_coco.py'

# ParNet-XL-CSP (half of every stream bypasses its blocks; see ParNetCSP), strides 8/16/32.
model = dict(
    backbone=dict(_delete_=True, type='ParNetCSP', arch='xl', out_indices=(1, 2, 3)),
    neck=dict(in_channels=[400, 800, 3200]))
