_base_ = '../_base_/yolo_pafpn_coco.py'

# ParNet-XL with the PAFPN at the backbone's own widths (400/800/3200): a 118M-parameter neck against
# the baseline's 20M. For reference only, to show what the reduced neck of
# ./yolox_parnet-xl_reduced-pafpn_8xb8-300e_coco.py buys.
model = dict(
    backbone=dict(_delete_=True, type='ParNet', arch='xl', out_indices=(1, 2, 3)),
    neck=dict(in_channels=[400, 800, 3200]))
