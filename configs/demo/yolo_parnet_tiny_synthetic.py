_base_ = '../_base_/synthetic_coco_cpu.py'

# A narrow ParNet (same topology: 3 streams, 2 fusions, depth 12) for the CPU demo.
model = dict(
    backbone=dict(
        _delete_=True,
        type='ParNet',
        arch=dict(stream_channels=(32, 64, 128), final_channels=256, num_blocks=(2, 3, 3)),
        out_indices=(1, 2, 3)),
    # The reduced neck, as in the COCO configs: 1x1 convs to the baseline's widths, then its PAFPN.
    neck=dict(type='ReducedYOLOXPAFPN', in_channels=[64, 128, 256], reduced_channels=[64, 128, 256]))
