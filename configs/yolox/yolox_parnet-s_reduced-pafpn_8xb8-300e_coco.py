_base_ = '../_base_/yolo_pafpn_coco.py'

# ParNet-S, outputs at strides 8/16/32; its backbone has the baseline's FLOPs (77 vs 78 GFLOPs at 640 px)
# at depth 12 instead of 64: the FLOPs-matched pair of the speed comparison.
# The reduced neck: three 1x1 ConvModules map the backbone's outputs to the baseline's widths, then the
# baseline's own PAFPN and head (see ReducedYOLOXPAFPN).
model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='s', out_indices=(1, 2, 3)),
    neck=dict(type='ReducedYOLOXPAFPN', in_channels=[192, 384, 1280], reduced_channels=[256, 512, 1024]))
