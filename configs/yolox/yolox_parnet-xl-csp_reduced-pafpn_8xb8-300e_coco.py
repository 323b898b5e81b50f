_base_ = '../_base_/yolo_pafpn_coco.py'

# ParNet-XL-CSP (half of every stream bypasses its blocks; see ParNetCSP), strides 8/16/32.
# The reduced neck: three 1x1 ConvModules map the backbone's outputs to the baseline's widths, then the
# baseline's own PAFPN and head (see ReducedYOLOXPAFPN).
model = dict(
    backbone=dict(_delete_=True, type='ParNetCSP', arch='xl', out_indices=(1, 2, 3)),
    neck=dict(type='ReducedYOLOXPAFPN', in_channels=[400, 800, 3200], reduced_channels=[256, 512, 1024]))
