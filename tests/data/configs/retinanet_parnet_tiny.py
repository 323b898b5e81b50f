# A config as a user writes it: mmdet's base config, parnet_det through custom_imports.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['parnet_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ParNet',
        arch=dict(stream_channels=(16, 32, 64), final_channels=128, num_blocks=(1, 1, 1)),
        out_indices=(1, 2, 3)),
    neck=dict(in_channels=[32, 64, 128]))
