_base_ = './yolov4-csp_cspdarknet53s_csp-pan_8xb8-300e_coco.py'

# The paper's detector: YOLOv4-CSP with CSPDarknet53s (depth 64) replaced by ParNet-XL (depth 12), on the
# published detector's neck and head and Scaled-YOLOv4's recipe (configs/_base_/yolov4_csp_coco.py).
# Like for like with ./yolov4-csp_cspdarknet53s_csp-pan_8xb8-300e_coco.py (the published baseline): only the
# backbone differs, plus the reduced neck's three 1x1 ConvModules that map ParNet's outputs (strides 8/16/32) to
# the baseline's widths 256/512/1024 in front of the SPP-CSP and CSP-PAN (ReducedYOLOv4CSPNeck).
# Trained from scratch like the baseline; to start from the official ImageNet weights add
#   init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parnet_xl_imagenet_converted.pth')
# to the backbone (the official checkpoint converted by tools/convert_official_weights.py; docs/backbone.md).
model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(1, 2, 3)),
    neck=dict(type='ReducedYOLOv4CSPNeck', in_channels=[400, 800, 3200], reduced_channels=[256, 512, 1024]))
