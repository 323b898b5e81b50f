# ParNet-L, the official command: 120 epochs, --reprob 0.4. Paper: 77.66% top-1.
_base_ = './_base_/parnet_8xb128_in1k.py'

model = dict(backbone=dict(arch='l'), head=dict(in_channels=2560))
epochs = 120
param_scheduler = [{**_base_.param_scheduler[0], 'T_max': epochs, 'end': epochs}]
train_cfg = dict(max_epochs=epochs + 10)
