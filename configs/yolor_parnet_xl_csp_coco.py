_base_ = './yolor_parnet_xl_coco.py'

# ParNet-XL-CSP with YOLOR's implicit head and the SiLU CSP-PAN (see yolor_parnet_xl_coco.py).
model = dict(backbone=dict(type='ParNetCSP'))
