_base_ = './yolov4-csp_cspdarknet53s_csp-pan_8xb8-300e-2020-11_coco.py'

# ParNet-XL on the published YOLOv4-CSP's neck and head, trained with the 2020-11 recipe that produced the
# published weights (47.5 test-dev, 47.8 val2017): like for like with those numbers. The same detector as
# ./yolov4-csp_parnet-xl_reduced-csp-pan_8xb8-300e_coco.py (which trains with the 2021-05 recipe, about 48.7
# val2017 for the baseline).
model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(1, 2, 3)),
    neck=dict(type='ReducedYOLOv4CSPNeck', in_channels=[400, 800, 3200], reduced_channels=[256, 512, 1024]))
