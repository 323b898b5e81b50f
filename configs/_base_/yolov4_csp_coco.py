# Scaled-YOLOv4's training recipe for the YOLOv4-CSP head: its 2021-05 code (branch yolov4-csp, hyp.scratch.yaml,
# train.py; about 48.7 val2017 AP; facts in ../shared/reference/yolov4_csp.md section 4) on mmdet's pipeline and
# mmengine's schedule: 300 epochs from scratch at 640 px, batch 64 (8 GPUs x 8 images), mosaic + centred random
# perspective + multiplicative HSV + flip, SGD (Nesterov, momentum 0.937, weight decay 5e-4 on conv weights),
# warm-up, cosine to 0.2 lr0, EMA. The published 47.5 test-dev weights came from the older 2020-11 code:
# ../yolov4_csp_coco_2020-11.py. A detector config adds the model (backbone, neck, YOLOv4CSPHead) on top; the loss
# settings below are the recipe's.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['parnet_det'], allow_failed_imports=False)

img_scale = (640, 640)  # width, height
data_root = 'data/coco/'
dataset_type = 'CheckedCocoDataset'  # mmdet's CocoDataset, reporting the boxes it drops
backend_args = None
max_epochs = 300
base_lr = 0.01  # lr0, for the loss summed over the batch of 64 (see auto_scale_lr below)

model = dict(
    type='SingleStageDetector',
    # The network sees RGB in 0-1 (Scaled-YOLOv4's input); batches pad with the letterbox grey 114 (114 / 255:
    # the padding comes after the normalisation).
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.],
                           bgr_to_rgb=True, pad_size_divisor=64, pad_value=114 / 255),
    # The recipe's loss (YOLOv4CSPLoss): anchor_t 4.0, neighbour cells, CIoU box loss, objectness target
    # max(CIoU, 0), objectness level weights 4.0/1.0/0.4, gains box 0.05, obj 0.7, cls 0.3 x C/80, x batch.
    bbox_head=dict(loss=dict(type='YOLOv4CSPLoss')),
    train_cfg=None)

# The recipe's per-sample order (section 4.7): load_mosaic with random_perspective inside -> augment_hsv -> flip.
train_pipeline = [
    # load_mosaic: each image resized to a long side of 640 keeping its ratio (bilinear, mmcv's imresize default,
    # the recipe's INTER_LINEAR while training), the sample's own image and 3 drawn with replacement placed around
    # a point drawn uniformly in [320, 960] per axis and truncated to int, on a 1280 x 1280 canvas of 114, boxes
    # clipped to it. mmdet 3.3's Mosaic is that step; it differs only in also dropping the boxes the clip leaves
    # with zero width or height (wholly outside the canvas), which box_candidates below drops anyway (<= 2 px).
    dict(type='Mosaic', img_scale=img_scale, center_ratio_range=(0.5, 1.5), pad_val=114.0),
    # random_perspective about the canvas centre, cut back to 640 (border -320): scale 0.9 -> factor 0.1-1.9,
    # the canvas centre at the output's centre +- 10 % (translate 0.1), no rotation, shear or perspective; then
    # box_candidates (sides > 2 px, > 10 % of the area of the box scaled by the factor, aspect < 20). mmdet's
    # RandomAffine is not the same: it scales about the canvas origin (keeps the top-left of the mosaic) and
    # has no such box filter in mmdet 3.3.
    dict(type='CentredRandomPerspective', degrees=0.0, translate=0.1, scale=0.9, shear=0.0, perspective=0.0,
         border=(-img_scale[0] // 2, -img_scale[1] // 2), pad_val=114),
    # augment_hsv on every image: H, S, V multiplied by 1 + U(-1, 1) x (0.015, 0.7, 0.4) through 8-bit lookup
    # tables (mmdet's YOLOXHSVRandomAug adds offsets instead).
    dict(type='RandomHSVGain', hue_gain=0.015, saturation_gain=0.7, value_gain=0.4),
    # fliplr 0.5, flipud 0. An image whose boxes all left the crop stays, as background (the recipe keeps it).
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
# The official test-time input: long side resized to 640 keeping the aspect ratio, then letterboxed
# (centred, grey 114) to the rectangular shape ceil(side / long side * 640 / 64 + 0.5) * 64 per side.
# Exact at batch size 1 where the image shrinks or keeps its size (INTER_AREA, as the official test; COCO
# images have a long side of at most 640). An image that grows (long side under the target, e.g. every
# COCO image at --resolution 1280) is enlarged with INTER_AREA too, where the official test uses
# INTER_LINEAR: mmdet's Resize has one interpolation. The official test also batches images sorted by
# aspect ratio to a shared shape, which a per-image pipeline cannot do: with batch_size > 1 each batch is
# padded at the bottom right to its largest letterboxed image (a few more grey pixels).
test_pipeline = [
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),  # on_error='raise': skipping changes AP
    dict(type='Resize', scale=img_scale, keep_ratio=True, interpolation='area'),
    dict(type='RectLetterbox', img_size=640, stride=64, pad=0.5, pad_val=114),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'pad_param'))
]
train_dataloader = dict(
    batch_size=8,  # per GPU; 8 GPUs: the recipe's batch of 64, no gradient accumulation
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='MultiImageMixDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            # The recipe also trains on images without boxes (background).
            filter_cfg=dict(filter_empty_gt=False, min_size=32),
            pipeline=[
                # Training skips an unreadable image with a warning naming it.
                dict(type='CheckedLoadImageFromFile', on_error='skip', backend_args=backend_args),
                dict(type='LoadAnnotations', with_bbox=True)
            ],
            backend_args=backend_args),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json', metric='bbox',
                     backend_args=backend_args)
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# SGD, Nesterov, momentum 0.937; weight decay 5e-4 on conv weights only (biases and BN without), as the
# recipe's three parameter groups.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.937, weight_decay=5e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    # Warm-up over 3 epochs (the recipe: max(3 epochs, 1000 iterations); 3 COCO epochs at batch 64 are ~5500
    # iterations), lr linear from ~0 (mmengine's LinearLR cannot start at exactly 0) and momentum 0.8 -> 0.937.
    # The recipe also starts the biases' lr at 0.1 and falls to the schedule; mmengine has no per-group
    # warm-up, so biases warm up like the weights here.
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=3, convert_to_iter_based=True),
    dict(type='LinearMomentum', start_factor=0.8 / 0.937, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    # lr0 x ((1 + cos(pi e / 300)) / 2 x 0.8 + 0.2): cosine to lrf = 0.2 of lr0 (the recipe steps it per
    # epoch; here per iteration, the same curve).
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.2, begin=0, end=max_epochs, T_max=max_epochs,
         by_epoch=True, convert_to_iter_based=True)
]
# EMA: decay 0.9999 (1 - exp(-updates / 2000)), over every float state including BN statistics. mmdet's
# ExpMomentumEMA with momentum 1e-4 and gamma 2000 is that decay (its step count starts at 1, not 0).
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001, gamma=2000, update_buffers=True, priority=49)
]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3), logger=dict(interval=50))
# YOLOv4CSPLoss multiplies the loss by the step's total batch (per-GPU batch x GPUs): a sum over the images,
# whose gradient already grows with the batch (the linear scaling rule), so lr0 = 0.01 holds at any batch
# and --auto-scale-lr must stay off (it would scale the lr a second time). The recipe at another batch
# accumulates gradients to 64 instead; mmengine's accumulative_counts averages instead of summing, so
# keep the batch at 64 over the GPUs (e.g. 4 x 16) to follow the recipe exactly.
auto_scale_lr = dict(enable=False, base_batch_size=64)
