#!/usr/bin/env bash
# The H100 benchmark as run through the device tool (one prepared script, one call):
# ParNet-XL and ParNet-XL-CSP detectors against the CSPDarknet53s baseline, same YOLOX-L neck/head,
# deploy form, random weights, at 640 / 512 / 1280 px, batch 1 and 32, fp32 and fp16.
# Results land in $OUT (copied to docs/benchmarks/h100/ afterwards).
set -uo pipefail
source .device-kit/install.sh && export PYTHONPATH=$PWD:${PYTHONPATH:-}
OUT=${OUT:-work_dirs/h100}
mkdir -p "$OUT"
python3 tools/collect_env.py | tee "$OUT/env.txt"
# Folding is exact on the GPU too (fp32, TF32 off).
python3 - <<'PY' 2>&1 | tee "$OUT/fold_check.txt"
import torch, parnet_det
from parnet_det.models.backbones import ParNet
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
torch.manual_seed(0)
m = ParNet(arch='xl', out_indices=(1, 2, 3)).cuda()
with torch.no_grad():
    m.train(); m(torch.randn(4, 3, 256, 256, device='cuda'))  # move BN statistics
    m.eval(); x = torch.randn(2, 3, 200, 328, device='cuda'); ref = m(x)
    parnet_det.switch_to_deploy(m); out = m(x)
for r, o in zip(ref, out):
    print('ParNet-XL fold on CUDA, relative error', ((o - r).norm() / r.norm()).item())
PY
for res in 640 512 1280; do
  timeout 150 python3 tools/benchmark.py configs/yolo_parnet_xl_coco.py \
      --baseline configs/yolo_cspdarknet53s_coco.py --baseline configs/yolo_parnet_xl_csp_coco.py \
      --resolutions $res --batch-sizes 1 32 --precision fp32 fp16 --deploy --device cuda \
      --warmup 3 --iters 5 --repeats 3 --work-dir "$OUT/res$res" 2>&1 | grep -v -i warn
done
