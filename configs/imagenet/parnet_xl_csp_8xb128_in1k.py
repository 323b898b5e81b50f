# ParNet-XL-CSP (this project's design, see ParNetCSP), pre-trained with ParNet-XL's recipe (200 epochs), so that
# its detectors start from ImageNet as ParNet-XL's do. No published top-1.
_base_ = './parnet_xl_8xb128_in1k.py'

model = dict(backbone=dict(type='ParNetCSP'))
