_base_ = '../_base_/yolo_pafpn_coco.py'

# ParNet-XL, outputs at strides 8/16/32. Trained from scratch like the baseline; to start from
# the official ImageNet weights add
#   init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parnet_xl_imagenet_converted.pth')
# (see tools/convert_official_weights.py).
# The reduced neck: three 1x1 ConvModules map the backbone's outputs to the baseline's widths, then the
# baseline's own PAFPN and head (see ReducedYOLOXPAFPN).
# ./yolox_parnet-xl_pafpn_8xb8-300e_coco.py keeps the PAFPN at the backbone's widths instead.
model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(1, 2, 3)),
    neck=dict(type='ReducedYOLOXPAFPN', in_channels=[400, 800, 3200], reduced_channels=[256, 512, 1024]))
