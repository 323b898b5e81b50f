_base_ = '../_base_/synthetic_coco_cpu.py'

# A stand-in, not part of the demo run: mmdet's YOLOX (its CSPDarknet backbone, as YOLOX-L has it) at the demo's
# narrow scale (a quarter width, a third of the blocks: out channels 64/128/256, as mmdet's yolox_nano/tiny forms
# scale it), trained on the generated data so that the INT8 AP change of the CPU runtime table's YOLOX-L rows is
# measured on a trained detector of that backbone (docs/benchmarks/cpu_runtimes/int8.md).
model = dict(
    backbone=dict(type='CSPDarknet', deepen_factor=0.33, widen_factor=0.25, out_indices=(2, 3, 4)),
    neck=dict(in_channels=[64, 128, 256]))
