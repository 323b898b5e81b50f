_base_ = '../yolov4_csp/yolov4-csp_parnet-xl_reduced-csp-pan_8xb8-300e_coco.py'

# The paper's own head: it took "the head and reduced neck from YOLOR". ParNet-XL, the reduced neck's 1x1
# convs, the CSP-PAN with SiLU instead of Mish (as YOLOR's CSP configs), and YOLOR's implicit head: ImplicitA
# added before and ImplicitM multiplied after each level's 1x1 prediction conv (both fold into that conv
# for deploy). Decode, loss and recipe as YOLOv4-CSP's (YOLOR's hyp.scratch.640 equals Scaled-YOLOv4's).
# Not like for like with the published baseline: activation and head differ besides the backbone.
model = dict(
    neck=dict(act_cfg=dict(type='SiLU')),
    bbox_head=dict(act_cfg=dict(type='SiLU'), implicit=True))
