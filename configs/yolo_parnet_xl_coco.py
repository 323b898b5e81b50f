_base_ = './_base_/yolo_pafpn_coco.py'

# ParNet-XL, outputs at strides 8/16/32. Trained from scratch like the baseline; to start from
# the official ImageNet weights add
#   init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parnet_xl_imagenet_converted.pth')
# (see tools/convert_official_weights.py).
model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(1, 2, 3)),
    neck=dict(in_channels=[400, 800, 3200]))
