# Trained with Scaled-YOLOv4's recipe (configs/_base_/yolov4_csp_coco.py: pipeline, schedule, the loss).
_base_ = '../_base_/yolov4_csp_coco.py'

# YOLOv4-CSP (Scaled-YOLOv4), the paper's baseline as published: darknet's yolov4-csp.cfg in mmdet.
# Backbone CSPDarknet53s in the cfg's CSP form, SPP-CSP + CSP-PAN neck (outputs 128/256/512 at strides
# 8/16/32), head with a 3x3 conv per level (256/512/1024) and 3 anchors per level. BatchNorm eps 1e-4
# as Scaled-YOLOv4's PyTorch port, whose weights give the published val2017 AP (darknet uses 1e-5,
# mmdet's YOLO default 1e-3 moves the boxes of the same weights). The official weights load after
# tools/convert_darknet_weights.py.
norm_cfg = dict(type='BN', momentum=0.03, eps=1e-4)
model = dict(
    # The detector type, its input normalisation (RGB, 0-1) and the loss: the base.
    backbone=dict(type='CSPDarknet53s', csp_form='per_branch', out_indices=(2, 3, 4), norm_cfg=norm_cfg),
    neck=dict(type='YOLOv4CSPNeck', in_channels=[256, 512, 1024], norm_cfg=norm_cfg),
    bbox_head=dict(
        type='YOLOv4CSPHead',
        num_classes=80,
        in_channels=[128, 256, 512],
        feat_channels=[256, 512, 1024],
        norm_cfg=norm_cfg,
        prior_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(12, 16), (19, 36), (40, 28)], [(36, 75), (76, 55), (72, 146)],
                        [(142, 110), (192, 243), (459, 401)]],
            strides=[8, 16, 32])),
    # The official COCO test (Scaled-YOLOv4 test.py): objectness > 0.001, score = objectness x class
    # probability > 0.001 for every class of a box (multi-label), per-class NMS at IoU 0.65, at most 300
    # detections, no top-k before NMS.
    test_cfg=dict(conf_thr=0.001, score_thr=0.001, nms=dict(type='nms', iou_threshold=0.65), max_per_img=300))
