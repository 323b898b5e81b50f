#!/usr/bin/env bash
# The H100 check of the inference fast paths (issue 7), as one device-tool call:
#   carry: [".device-kit"], timeout_s: 560, command: bash docs/benchmarks/run_h100_fast_paths.sh
# 1. the CUDA tests of the fast paths (streams = sequential, graphs and fp16 = eager);
# 2. ParNet-XL, ParNet-XL-CSP and CSPDarknet53s detectors (YOLOX-L neck/head, random weights,
#    deploy form) at 640 px, fp16, batch 1 and 32: mmdet's path against the engine's variants.
# Each step has its own time limit, so one slow step cannot cost the others' results.
# Results land in $OUT; copy them to docs/benchmarks/h100_fast_paths/ afterwards.
set -uo pipefail
source .device-kit/install.sh && export PYTHONPATH=$PWD:${PYTHONPATH:-}
OUT=${OUT:-work_dirs/h100_fast_paths}
mkdir -p "$OUT"
python3 tools/collect_env.py > "$OUT/env.txt" 2>&1
timeout 120 python3 -m pytest tests/test_inference -q -m "not slow" -p no:cacheprovider 2>&1 | tail -15 \
    | tee "$OUT/cuda_tests.txt"
VARIANTS="mmdet eager streams cuda_graph streams+cuda_graph channels_last+cuda_graph streams+channels_last+cuda_graph"
for model in yolo_parnet_xl_coco yolo_parnet_xl_csp_coco yolo_cspdarknet53s_coco; do
  timeout 110 python3 tools/benchmark.py configs/$model.py --resolutions 640 --batch-sizes 1 32 \
      --precision fp16 --variants $VARIANTS --device cuda --warmup 5 --iters 20 --repeats 3 \
      --work-dir "$OUT/$model" 2>&1 | grep -v -i warn | tee "$OUT/$model.log"
done
# torch.compile (inductor) on the largest model only: compilation takes minutes.
timeout 150 python3 tools/benchmark.py configs/yolo_parnet_xl_coco.py --resolutions 640 --batch-sizes 32 \
    --precision fp16 --variants eager channels_last+compile --device cuda --warmup 2 --iters 20 --repeats 3 \
    --work-dir "$OUT/compile" 2>&1 | grep -v -i warn | tee "$OUT/compile.log"
