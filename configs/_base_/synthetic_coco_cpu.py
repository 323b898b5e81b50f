# Small detectors on the generated COCO-format dataset (tools/dataset/generate_synthetic_coco.py),
# trained on a CPU in minutes. Same neck/head types and losses as the COCO recipe, narrower,
# at 160 px, with a short AdamW schedule instead of 300 epochs of SGD.
_base_ = './yolo_pafpn_coco.py'

data_root = 'data/synthetic_coco/'
img_scale = (160, 160)  # width, height; the demo generates 160 px images
metainfo = dict(classes=('circle', 'rectangle', 'triangle', 'ring', 'cross'))
max_epochs = 12

model = dict(
    # Fixed input size: the COCO recipe's multi-scale batch augment is for 640 px training.
    data_preprocessor=dict(batch_augments=None),
    neck=dict(out_channels=64, num_csp_blocks=1),
    bbox_head=dict(num_classes=5, in_channels=64, feat_channels=64))

train_pipeline = [
    dict(type='CheckedLoadImageFromFile', on_error='skip'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),  # on_error='raise', the default (see yolo_pafpn_coco.py)
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CheckedCocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=0.0001, begin=0, T_max=max_epochs, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True)
]
# No mosaic to switch off, no multi-GPU BN to sync; EMA does not pay off in a few hundred iterations.
custom_hooks = []
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=2), logger=dict(interval=10))
auto_scale_lr = dict(base_batch_size=8)
