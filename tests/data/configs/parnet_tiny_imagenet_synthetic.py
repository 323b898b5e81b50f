# The ImageNet recipe (configs/imagenet/parnet_s_8xb128_in1k.py: its model, pipeline steps, EMA, smoothing, erasing)
# on the generated stripe dataset (parnet_det.datasets.synthetic_imagenet), small enough for a CPU test: a tiny
# ParNet, 32 px crops, 4 classes. Set data_root with --cfg-options (every dataloader's).
_base_ = '../../../configs/imagenet/parnet_s_8xb128_in1k.py'

classes = ('checkerboard', 'horizontal', 'plain', 'vertical')
model = dict(
    backbone=dict(arch=dict(_delete_=True, stream_channels=(16, 32, 64), final_channels=128, num_blocks=(1, 2, 2))),
    data_preprocessor=dict(num_classes=len(classes)),
    head=dict(num_classes=len(classes), in_channels=128, topk=(1,)))
# 32 px crops of 40 px images; the crop keeps at least half of the image (at 8% a stripe fills the crop).
train_pipeline = [{**step, 'scale': 32, 'crop_ratio_range': (0.5, 1.0)} if step['type'] == 'RandomResizedCrop'
                  else step for step in _base_.train_pipeline]
test_pipeline = [{**step, 'scale': 36} if step['type'] == 'ResizeEdge'
                 else {**step, 'crop_size': 32} if step['type'] == 'CenterCrop' else step
                 for step in _base_.test_pipeline]
loader = dict(batch_size=16, num_workers=0, persistent_workers=False)
train_dataloader = dict(**loader, dataset=dict(metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(**loader, dataset=dict(metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1,))
test_evaluator = val_evaluator

# A few epochs: a larger lr and a fast EMA (still the evaluated weights) than the 120-epoch recipe's.
epochs = 8
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [{**_base_.param_scheduler[0], 'T_max': epochs, 'end': epochs}]
train_cfg = dict(max_epochs=epochs, val_interval=epochs)
custom_hooks = [{**_base_.custom_hooks[0], 'momentum': 0.2}]
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)
