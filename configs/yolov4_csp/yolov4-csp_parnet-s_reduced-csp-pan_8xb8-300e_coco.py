_base_ = './yolov4-csp_parnet-xl_reduced-csp-pan_8xb8-300e_coco.py'

# ParNet-S on YOLOv4-CSP's neck and head with Scaled-YOLOv4's recipe, like for like with the published
# baseline (see ./yolov4-csp_parnet-xl_reduced-csp-pan_8xb8-300e_coco.py; ImageNet weights through the
# backbone's init_cfg the same way).
model = dict(
    backbone=dict(type='ParNet', arch='s'),
    neck=dict(in_channels=[192, 384, 1280]))
