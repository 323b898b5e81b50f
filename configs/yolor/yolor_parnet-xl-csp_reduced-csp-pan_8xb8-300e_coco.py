_base_ = './yolor_parnet-xl_reduced-csp-pan_8xb8-300e_coco.py'

# ParNet-XL-CSP with YOLOR's implicit head and the SiLU CSP-PAN (see
# ./yolor_parnet-xl_reduced-csp-pan_8xb8-300e_coco.py).
model = dict(backbone=dict(type='ParNetCSP'))
