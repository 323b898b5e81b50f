# ParNet on ImageNet-1k with the official recipe, in mmpretrain's terms (ImageClassifier, its data pipeline and
# runtime), as MMDetection's configs/rtmdet/cspnext_imagenet_pretrain/ do for CSPNeXt.
#
# The recipe: the official release's imagenet/train_models.sh (timm's train.py, 8 GPUs x 128 images):
#   --opt sgd --lr 0.001 --sched cosine --warmup-epochs 0 --epochs 120 (200 for ParNet-XL)
#   --model-ema --model-ema-decay 0.9999 --smoothing 0.1 --aa rand-m9-mstd0.5 --mixup 0.0
#   --remode pixel --reprob 0.2 (S, M) / 0.4 (L, XL) --input-size 3 224 224 --amp
# Settings the command leaves to timm are the defaults of the release's own imagenet/train.py (its argparse, checked:
# weight decay 1e-4, min lr 1e-5, 10 cool-down epochs, momentum 0.9, train interpolation 'random'),
# marked "timm default".
# Each difference from timm is commented where it is made. This file holds ParNet-XL's 200-epoch schedule
# and random erasing; parnet_{s,m,l}_8xb128_in1k.py change them to their commands'.
_base_ = 'mmpretrain::_base_/default_runtime.py'  # default_scope='mmpretrain', mmpretrain's hooks and logging

# ParNet, ParNetCSP and the package's hooks go into mmpretrain's registries here, not on `import parnet_det`
# (detection runs without mmpretrain).
custom_imports = dict(imports=['parnet_det.mmpretrain_registration'], allow_failed_imports=False)

# timm's IMAGENET_DEFAULT_MEAN / STD, in 0-255 RGB.
data_preprocessor = dict(num_classes=1000, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
bgr_mean = data_preprocessor['mean'][::-1]
bgr_std = data_preprocessor['std'][::-1]

model = dict(
    type='ImageClassifier',
    # In the model (mmpretrain keeps it beside): every builder of the model normalises, not only the Runner.
    data_preprocessor=data_preprocessor,
    # The official network's feature map before global pooling: ParNet's output 3 (stride 32).
    backbone=dict(type='ParNet', arch='xl', out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        # The release's model files put a dropout before the linear layer ("dropout_lin"): 0.1 for ParNet-L and
        # XL (and here XL-CSP, trained with XL's recipe), 0 for S and M. mmpretrain's LinearClsHead has none:
        # DropoutLinearClsHead is it with that dropout (same state dict).
        type='DropoutLinearClsHead',
        dropout=0.1,
        num_classes=1000,
        in_channels=3200,
        # --smoothing 0.1: timm's LabelSmoothingCrossEntropy is 'original' label smoothing (1-e on the label,
        # e/K on every class).
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        # Difference: the head's init is mmpretrain's (normal, std 0.01), not PyTorch's default.
        topk=(1, 5)),
)

train_pipeline = [
    # mmcv's loader, but one unreadable image is skipped with a warning (counted), as in the COCO configs.
    dict(type='mmdet.CheckedLoadImageFromFile', on_error='skip'),
    # timm's RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3)). Difference: timm's default train
    # interpolation is 'random' (bilinear or bicubic per image); bicubic here.
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # --aa rand-m9-mstd0.5: 2 operations, magnitude 9 of 10, magnitude noise std 0.5 (timm turns colour jitter
    # off when it is set). Difference: mmpretrain's timm policy set is the 'increasing' one (timm's
    # rand-m9-mstd0.5-inc1), whose solarize / posterize strengths grow with the magnitude.
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    # --remode pixel --reprob 0.4: one rectangle of 2-33% of the image filled with normal noise in the normalised
    # space (mean + std * N(0, 1) before normalisation, which is what mode='rand' with fill_std does).
    dict(type='RandomErasing', erase_prob=0.4, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
# The official evaluation transform, timm's for a model without its own: resize the short side to
# 224 / 0.875 = 256 (bicubic), centre crop 224, the normalisation above. The release's validate.sh sets no
# --crop-pct or --interpolation.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# mmpretrain's ImageNet layout: data/imagenet/{train,val}/ as class folders (n01440764/...), or flat folders
# with meta/{train,val}.txt ("relative/path.JPEG label" per line). -j 16 in the official command.
dataset_type = 'ImageNet'
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root='data/imagenet', split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root='data/imagenet', split='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# --opt sgd: timm's SGD is Nesterov with momentum 0.9 (timm default); weight decay 1e-4 (timm default), not on
# biases and norm weights (timm's filter_bias_and_bn). --amp: AmpOptimWrapper (fp32 where there is no GPU).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, nesterov=True, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
# --sched cosine --warmup-epochs 0: cosine over the epochs to timm's default min lr 1e-5, stepped once per
# epoch, then timm's default 10 cool-down epochs at the min lr (timm trains epochs + 10).
epochs = 200
param_scheduler = [dict(type='CosineAnnealingLR', T_max=epochs, eta_min=1e-5, by_epoch=True, begin=0, end=epochs)]
train_cfg = dict(by_epoch=True, max_epochs=epochs + 10, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# The recipe's total batch: --auto-scale-lr scales the lr linearly for another one.
auto_scale_lr = dict(base_batch_size=1024)

# --model-ema --model-ema-decay 0.9999: timm's ModelEmaV2 averages every parameter and buffer after each step;
# here the EMA weights are evaluated and saved as the checkpoint's state_dict (mmengine's EMAHook; the plain ones
# in ema_state_dict). The release's validate commands evaluate its checkpoints' plain state_dict (timm's validate.py
# without --use-ema), which is what tools/convert_official_weights.py takes by default.
custom_hooks = [dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL')]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    # Written atomically (tools/train.py swaps in CrashSafeCheckpointHook).
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
