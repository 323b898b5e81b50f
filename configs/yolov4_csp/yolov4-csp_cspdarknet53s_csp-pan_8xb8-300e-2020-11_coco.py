_base_ = './yolov4-csp_cspdarknet53s_csp-pan_8xb8-300e_coco.py'

# The published YOLOv4-CSP (./yolov4-csp_cspdarknet53s_csp-pan_8xb8-300e_coco.py) trained with Scaled-YOLOv4's
# older recipe: the 2020-11 code of branch yolov4-csp (@4dfcec6), which produced the published weights (47.5
# test-dev AP in the paper, 47.8 val2017 in its README). docs/reference/yolov4_csp.md §4.6: the steps of the
# 2021-05 recipe (../_base_/yolov4_csp_coco.py, about 48.7 val2017) with other settings: the mosaic point fixed at
# the canvas centre (load_mosaic's yc, xc = s, s), random_perspective translate 0.0 and scale 0.5 (factor 0.5-1.5),
# box_candidates keeping a box above 0.2 (not 0.1) of its scaled area, loss gains box 0.05 (named giou then), obj
# 1.0, cls 0.5, the warm-up momentum from 0.9 (not 0.8), and the grid stride 32 of the rectangular test shapes. A
# ParNet detector on this recipe inherits this file (./yolov4-csp_parnet-xl_reduced-csp-pan_8xb8-300e-2020-11_coco.py),
# as the 2021-05 one inherits the 2021-05 baseline. (Not a _base_/ recipe file: mmengine refuses two bases that
# share a key, so such a file could not be combined with the detector without repeating the detector.)
recipe_2020_11 = dict(
    Mosaic=dict(center_ratio_range=(1.0, 1.0)),
    CentredRandomPerspective=dict(translate=0.0, scale=0.5, min_area_ratio=0.2))
train_pipeline = [dict(step, **recipe_2020_11.get(step.type, {})) for step in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    bbox_head=dict(loss=dict(box_gain=0.05, obj_gain=1.0, cls_gain=0.5)))
# The test letterbox of ../_base_/yolov4_csp_coco.py with the old code's stride: ceil(side / long side x 640 / 32
# + 0.5) x 32 per side.
test_pipeline = [dict(step, stride=32) if step.type == 'RectLetterbox' else step for step in _base_.test_pipeline]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
custom_hooks = [dict(hook, warmup_momentum=0.9) if hook.type == 'YOLOv4CSPLrHook' else hook
                for hook in _base_.custom_hooks]
