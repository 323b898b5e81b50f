# FCOS with ParNet-XL. mmdet's FCOS-R50 base normalises for caffe-style weights (BGR, std 1);
# ParNet's ImageNet weights expect RGB with the torchvision mean/std, so that is restored.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'

custom_imports = dict(imports=['parnet_det'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[200, 400, 800, 3200]))
