# Scaled-YOLOv4's training recipe for the YOLOv4-CSP head: its 2021-05 code (branch yolov4-csp, hyp.scratch.yaml,
# train.py; about 48.7 val2017 AP; facts in docs/reference/yolov4_csp.md §4) on mmdet's pipeline and
# mmengine's schedule: 300 epochs from scratch at 640 px, a nominal batch of 64 on any layout (8 GPUs x 8 images as
# here, or 1 GPU x 16 with gradients summed over 4 steps: --cfg-options train_dataloader.batch_size=16, the official
# README's command), mosaic + centred random perspective + multiplicative HSV + flip, SGD (Nesterov, momentum 0.937,
# weight decay 5e-4 on conv weights), warm-up with the biases from lr 0.1, cosine to 0.2 lr0 per epoch, EMA, AMP,
# SyncBN over the GPUs, the official letterboxed test and COCOeval at maxDets 1/10/100. The published 47.5 test-dev
# weights came from the older 2020-11 code: ../yolov4_csp/yolov4-csp_cspdarknet53s_csp-pan_8xb8-300e-2020-11_coco.py.
# A detector config adds the model (backbone, neck, YOLOv4CSPHead) on top; the loss settings below are the recipe's.
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['parnet_det'], allow_failed_imports=False)

img_scale = (640, 640)  # width, height
data_root = 'data/coco/'
dataset_type = 'CheckedCocoDataset'  # mmdet's CocoDataset, reporting the boxes it drops
backend_args = None
max_epochs = 300
base_lr = 0.01  # lr0, for the loss summed over the nominal batch of 64 (see optim_wrapper)

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
    batch_size=8,  # per GPU; 8 GPUs: the nominal batch of 64 in one step (fewer images: accumulated)
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
# COCOeval with its own maxDets (1, 10, 100), as Scaled-YOLOv4's test.py: mmdet's CocoMetric default
# proposal_nums=(100, 300, 1000) becomes pycocotools' maxDets, which computes AP50, AP75 and APs/m/l at the
# last one (1000), not comparable with published figures. (mmdet's names of the AR items, AR@100/300/1000,
# then stand for AR@1/10/100; its default metric_items are the six AP numbers only.)
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json', metric='bbox',
                     proposal_nums=(1, 10, 100), backend_args=backend_args)
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# SGD, Nesterov, momentum 0.937, in the recipe's three parameter groups (YOLOv4CSPOptimWrapperConstructor):
# conv weights with weight decay 5e-4; biases, BatchNorm weights and YOLOR's implicit vectors without.
# mmengine's default constructor with paramwise_cfg made one group per parameter and decayed the implicit vectors.
# The nominal batch of train.py (NominalBatchAmpOptimWrapper): with B images per step over all GPUs, gradients are
# summed over accumulate = max(round(64 / B), 1) steps (ramped from 1 in the warm-up) and the weight decay is scaled
# by B x accumulate / 64, so 1 x 16, 4 x 16, 8 x 8 and several nodes make the batch-64 updates. AMP as the recipe's
# torch.cuda.amp (dynamic loss scale, fp16); tools/train.py trains in fp32 with NominalBatchOptimWrapper where there
# is no CUDA device (mmengine's AmpOptimWrapper cannot be built there).
optim_wrapper = dict(
    type='NominalBatchAmpOptimWrapper',
    nominal_batch_size=64,
    loss_scale='dynamic',
    constructor='YOLOv4CSPOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.937, weight_decay=5e-4, nesterov=True))
# The lr and momentum come from YOLOv4CSPLrHook (custom_hooks), not from mmengine's schedulers: those multiply one
# shared factor into every group's lr, and the recipe's warm-up starts the biases at 0.1, the rest at 0.
param_scheduler = None
custom_hooks = [
    # Warm-up over max(3 epochs, 1000) iterations (dataloader iterations, as train.py counts them), linear in the
    # iteration: bias lr 0.1 -> scheduled, other lr 0 -> scheduled, momentum 0.8 -> 0.937, gradient accumulation
    # 1 -> 64 / B (rounded); the schedule is lr0 x ((1 + cos(pi e / 300)) / 2 x 0.8 + 0.2), stepped per epoch e
    # (LambdaLR), to lrf = 0.2 of lr0.
    dict(type='YOLOv4CSPLrHook', lrf=0.2, warmup_epochs=3, warmup_min_iters=1000, warmup_bias_lr=0.1,
         warmup_momentum=0.8),
    # EMA: decay 0.9999 (1 - exp(-updates / 2000)) after each optimizer step (not each accumulated iteration), over
    # every float state including BN statistics. mmdet's ExpMomentumEMA with momentum 1e-4 and gamma 2000 is that
    # decay (its step count starts at 1, not 0).
    dict(type='OptimizerStepEMAHook', ema_type='ExpMomentumEMA', momentum=0.0001, gamma=2000, update_buffers=True,
         priority=49)
]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3), logger=dict(interval=50))
# SyncBN as the recipe's --sync-bn: mmengine's Runner converts every BatchNorm to torch's SyncBatchNorm when it
# trains distributed (launcher pytorch / slurm / mpi), so the batch statistics are those of the whole batch of 64
# over the GPUs. A no-op on one process (launcher none: mmengine converts nothing; a distributed launcher with one
# process converts, and SyncBatchNorm then computes plain BatchNorm). Dropped for CPU-only distributed runs
# (tools/train.py): torch's SyncBatchNorm trains on GPU tensors only.
sync_bn = 'torch'
# YOLOv4CSPLoss multiplies the loss by the step's total batch B (per-GPU batch x GPUs): a sum over the images, and the
# wrapper sums the accumulated steps, so lr0 = 0.01 acts on the gradient of a sum over the nominal 64 images at any B.
# --auto-scale-lr must stay off: it would scale the lr for a batch the nominal batch already accounts for.
auto_scale_lr = dict(enable=False, base_batch_size=64)
