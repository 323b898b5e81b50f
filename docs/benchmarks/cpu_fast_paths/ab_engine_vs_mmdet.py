"""Interleaved A/B on one process: mmdet's network call against the engine's (ParNet-XL-CSP detector, 640 px, CPU).

Separate benchmark runs on a shared VM drift by up to ~20%; alternating the calls removes that drift.

    python docs/benchmarks/cpu_fast_paths/ab_engine_vs_mmdet.py   # prints ms per call, 3 rounds
"""
import copy
import time

import torch

from parnet_det.apis import load_config
from parnet_det.apis import build_detector
from parnet_det.benchmark import pack_images, synthetic_images
from parnet_det.inference import DetectorEngine
torch.set_num_threads(2)
cfg = load_config('configs/yolo_parnet_xl_csp_coco.py')
torch.manual_seed(0)
model = build_detector(cfg, fold=True)
engine = DetectorEngine(copy.deepcopy(model), cfg, 'cpu', input_size=(640, 640))
images = synthetic_images(640, 1)
with torch.inference_mode():
    data = model.data_preprocessor(pack_images(images), False)
    batch, _ = engine.preprocess(images)
    steps = {'mmdet _forward': lambda: model._forward(data['inputs'], data['data_samples']),
             'engine network': lambda: engine.network(batch),
             'engine network, no decode': lambda: engine.dense_network.detector._forward(batch)}
    for s in steps.values(): s()
    times = {k: [] for k in steps}
    for _ in range(3):
        for k, s in steps.items():
            t = time.perf_counter(); s(); times[k].append((time.perf_counter() - t) * 1000)
for k, v in times.items(): print(f'{k:28s} ' + ' '.join(f'{x:.0f}' for x in v))
