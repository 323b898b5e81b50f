# ParNet-S, the official command: 120 epochs, --reprob 0.2. Paper: 75.19% top-1.
_base_ = './parnet_m_8xb128_in1k.py'

model = dict(backbone=dict(arch='s'), head=dict(in_channels=1280))
