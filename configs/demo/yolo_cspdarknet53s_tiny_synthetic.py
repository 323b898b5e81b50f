_base_ = '../_base_/synthetic_coco_cpu.py'

# CSPDarknet53s at a quarter width and a third of the blocks: the baseline for the CPU demo.
model = dict(
    backbone=dict(
        _delete_=True, type='CSPDarknet53s', widen_factor=0.25, deepen_factor=0.33, out_indices=(2, 3, 4)),
    neck=dict(in_channels=[64, 128, 256]))
