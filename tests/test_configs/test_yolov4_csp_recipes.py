"""Both Scaled-YOLOv4 recipes, every value, as the configs build them: the 2021-05 code (hyp.scratch.yaml, train.py;
configs/yolov4_csp_coco.py) and the 2020-11 code (@4dfcec6; configs/yolov4_csp_coco_2020-11.py). Values from
docs/reference/yolov4_csp.md §4.3, §4.4, §4.6 and §4.7, written out here (not read from the configs)."""
import pytest

from mmdet.registry import HOOKS, TRANSFORMS

from parnet_det.utils.config import load_config

# hyp.scratch.yaml and train.py (2021-05), in the configs' terms.
RECIPE_2021_05 = dict(
    lr0=0.01, lrf=0.2, momentum=0.937, weight_decay=5e-4, nesterov=True, warmup_epochs=3, warmup_min_iters=1000,
    warmup_momentum=0.8, warmup_bias_lr=0.1, box=0.05, cls=0.3, obj=0.7, anchor_t=4.0,
    obj_level_weights=[4.0, 1.0, 0.4], hsv=(0.015, 0.7, 0.4), degrees=0.0, translate=0.1, scale=0.9, shear=0.0,
    perspective=0.0, fliplr=0.5, mosaic_centre=(0.5, 1.5), min_area_ratio=0.1, min_size=2.0, max_aspect_ratio=20.0,
    epochs=300, img_size=640, nominal_batch=64, ema_decay=1e-4, ema_ramp=2000, test_stride=64, pad_divisor=64)
# 2020-11: hyp differences (giou 0.05, cls 0.5, obj 1.0, translate 0, scale 0.5), gs 32, and the three settings of
# section 4.6: mosaic centre fixed at (s, s), box_candidates area_thr 0.2, warm-up momentum from 0.9.
RECIPE_2020_11 = dict(RECIPE_2021_05, cls=0.5, obj=1.0, translate=0.0, scale=0.5, mosaic_centre=(1.0, 1.0),
                      min_area_ratio=0.2, warmup_momentum=0.9, test_stride=32, pad_divisor=32)


def step(pipeline, kind):
    (found, ) = [s for s in pipeline if s.type == kind]
    return found


def recipe_of(config):
    cfg = load_config(config)
    train = cfg.train_dataloader.dataset.pipeline
    mosaic, warp = step(train, 'Mosaic'), step(train, 'CentredRandomPerspective')
    hsv, flip = step(train, 'RandomHSVGain'), step(train, 'RandomFlip')
    (lr_hook, ) = [h for h in cfg.custom_hooks if h.type == 'YOLOv4CSPLrHook']
    (ema, ) = [h for h in cfg.custom_hooks if h.type == 'OptimizerStepEMAHook']
    optimizer, loss = cfg.optim_wrapper.optimizer, cfg.model.bbox_head.loss
    return dict(
        lr0=optimizer.lr, lrf=lr_hook.lrf, momentum=optimizer.momentum, weight_decay=optimizer.weight_decay,
        nesterov=optimizer.nesterov, warmup_epochs=lr_hook.warmup_epochs, warmup_min_iters=lr_hook.warmup_min_iters,
        warmup_momentum=lr_hook.warmup_momentum, warmup_bias_lr=lr_hook.warmup_bias_lr,
        box=loss.get('box_gain', 0.05), cls=loss.get('cls_gain', 0.3), obj=loss.get('obj_gain', 0.7),
        anchor_t=loss.get('anchor_t', 4.0), obj_level_weights=list(loss.get('obj_level_weights', [4.0, 1.0, 0.4])),
        hsv=(hsv.hue_gain, hsv.saturation_gain, hsv.value_gain), degrees=warp.degrees, translate=warp.translate,
        scale=warp.scale, shear=warp.shear, perspective=warp.perspective, fliplr=flip.prob,
        mosaic_centre=tuple(mosaic.center_ratio_range), min_area_ratio=warp.get('min_area_ratio', 0.1),
        min_size=warp.get('min_size', 2.0), max_aspect_ratio=warp.get('max_aspect_ratio', 20.0),
        epochs=cfg.train_cfg.max_epochs, img_size=mosaic.img_scale[0],
        nominal_batch=cfg.optim_wrapper.nominal_batch_size, ema_decay=ema.momentum, ema_ramp=ema.gamma,
        test_stride=step(cfg.test_dataloader.dataset.pipeline, 'RectLetterbox').stride,
        pad_divisor=cfg.model.data_preprocessor.pad_size_divisor)


@pytest.mark.parametrize('config, recipe', [
    ('configs/yolov4_csp_coco.py', RECIPE_2021_05),
    ('configs/yolov4_csp_parnet_xl_coco.py', RECIPE_2021_05),
    ('configs/yolov4_csp_coco_2020-11.py', RECIPE_2020_11),
    ('configs/yolov4_csp_parnet_xl_coco_2020-11.py', RECIPE_2020_11),
])
def test_every_value_of_the_recipe(config, recipe):
    assert recipe_of(config) == recipe


def test_the_recipes_build_their_steps(mmdet_scope):
    # The values reach the transforms and the hook they configure.
    cfg = load_config('configs/yolov4_csp_coco_2020-11.py')
    train = cfg.train_dataloader.dataset.pipeline
    mosaic = TRANSFORMS.build(step(train, 'Mosaic'))
    assert mosaic.center_ratio_range == (1.0, 1.0)
    assert TRANSFORMS.build(step(train, 'CentredRandomPerspective')).min_area_ratio == 0.2
    (lr_hook, ) = [h for h in cfg.custom_hooks if h.type == 'YOLOv4CSPLrHook']
    assert HOOKS.build(lr_hook).warmup_momentum == 0.9
