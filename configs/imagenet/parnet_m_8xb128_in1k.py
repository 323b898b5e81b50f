# ParNet-M, the official command: 120 epochs, --reprob 0.2. Paper: 76.60% top-1.
_base_ = './parnet_l_8xb128_in1k.py'

# No dropout before the classifier (the release's dropout_lin is 0 for S and M; S inherits this).
model = dict(backbone=dict(arch='m'), head=dict(in_channels=2048, dropout=0.0))
train_pipeline = [{**step, 'erase_prob': 0.2} if step['type'] == 'RandomErasing' else step
                  for step in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
