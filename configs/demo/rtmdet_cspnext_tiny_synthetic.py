_base_ = '../_base_/synthetic_coco_cpu.py'

# A stand-in, not part of the demo run: mmdet's RTMDet (CSPNeXt backbone, CSPNeXtPAFPN, RTMDetSepBNHead, as
# mmdet's rtmdet_tiny_8xb32-300e_coco.py builds it) at the demo's narrow scale (rtmdet_tiny's depth, a quarter width:
# out channels 64/128/256, a 64-channel neck and head), trained on the generated data so that the INT8 AP change of
# the CPU runtime table's RTMDet-m/-l rows is measured on a trained detector of that backbone
# (docs/benchmarks/cpu_runtimes/int8.md). BN, not SyncBN (one process); no pretrained backbone.
# Data, 160 px pipeline, AdamW schedule and hooks are the demo base's: RTMDet's own recipe (CachedMosaic, MixUp, large
# scale jitter, EMA, a pipeline switch, 300 epochs at 640 px) is for COCO on GPUs; the demo's simple pipeline trains
# in minutes on a CPU. The model is written out whole (_delete_) because the base's is YOLOX's.
norm_cfg = dict(type='BN')
act_cfg = dict(type='SiLU', inplace=True)
model = dict(
    _delete_=True,
    type='RTMDet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[103.53, 116.28, 123.675],
        std=[57.375, 57.12, 58.395],
        bgr_to_rgb=False,
        batch_augments=None),
    backbone=dict(
        type='CSPNeXt',
        arch='P5',
        expand_ratio=0.5,
        deepen_factor=0.167,
        widen_factor=0.25,
        channel_attention=True,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    neck=dict(
        type='CSPNeXtPAFPN',
        in_channels=[64, 128, 256],
        out_channels=64,
        num_csp_blocks=1,
        expand_ratio=0.5,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    bbox_head=dict(
        type='RTMDetSepBNHead',
        num_classes=5,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder'),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        with_objectness=False,
        exp_on_reg=False,
        share_conv=True,
        pred_kernel_size=1,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    train_cfg=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13), allowed_border=-1, pos_weight=-1,
                   debug=False),
    test_cfg=dict(nms_pre=30000, min_bbox_size=0, score_thr=0.001, nms=dict(type='nms', iou_threshold=0.65),
                  max_per_img=300))
# The head shares its convs across levels (share_conv): the base's AdamW, with mmdet's RTMDet setting that lets a
# shared parameter sit in one group.
optim_wrapper = dict(paramwise_cfg=dict(bypass_duplicate=True))
