_base_ = '../_base_/yolo_pafpn_coco.py'

# ParNet-M, outputs at strides 8/16/32.
# The reduced neck: three 1x1 ConvModules map the backbone's outputs to the baseline's widths, then the
# baseline's own PAFPN and head (see ReducedYOLOXPAFPN).
model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='m', out_indices=(1, 2, 3)),
    neck=dict(type='ReducedYOLOXPAFPN', in_channels=[256, 512, 2048], reduced_channels=[256, 512, 1024]))
