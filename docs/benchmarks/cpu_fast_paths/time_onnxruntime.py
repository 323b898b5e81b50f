"""onnxruntime (CPU) against PyTorch eager on an exported detector graph, batch 1.

    python docs/benchmarks/cpu_fast_paths/time_onnxruntime.py CONFIG CHECKPOINT MODEL.onnx SIDE

MODEL.onnx from tools/deploy/export_onnx.py CONFIG CHECKPOINT MODEL.onnx --shape SIDE SIDE.
"""
import sys
import time
import onnxruntime as ort
import torch
from parnet_det.apis import init_detector_engine
from parnet_det.deploy import OnnxExportWrapper
torch.set_num_threads(2)
config, checkpoint, onnx_path, side = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
engine = init_detector_engine(config, checkpoint, 'cpu', input_size=(side, side))
module = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval()
x = module.letterboxed_inputs(1)
options = ort.SessionOptions(); options.intra_op_num_threads = 2
session = ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])
def median_ms(step, repeats=5):
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); step(); times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2], min(times), max(times)
with torch.inference_mode():
    torch_ms = median_ms(lambda: module(x))
ort_ms = median_ms(lambda: session.run(None, {'images': x.numpy()}))
print(f'PyTorch eager (engine-folded graph, 2 threads): median {torch_ms[0]:.0f} ms (min {torch_ms[1]:.0f}, max {torch_ms[2]:.0f})')
print(f'onnxruntime CPU (2 intra-op threads):           median {ort_ms[0]:.0f} ms (min {ort_ms[1]:.0f}, max {ort_ms[2]:.0f})')
