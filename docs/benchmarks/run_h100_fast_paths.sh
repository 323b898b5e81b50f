#!/usr/bin/env bash
# The H100 check of the inference fast paths (issue 7), as one device-tool call:
#   carry: [".device-kit"], timeout_s: 560, command: bash docs/benchmarks/run_h100_fast_paths.sh
# 1. the CUDA tests of the fast paths (streams = sequential, graphs and fp16 = eager);
# 2. ParNet-XL, ParNet-XL-CSP and CSPDarknet53s detectors (YOLOX-L neck/head, random weights,
#    deploy form) at 640 px, fp16, batch 1 and 32: mmdet's path against the engine's variants.
# Every step has its own time limit (about 500 s in all), and tools/benchmark.py appends each row
# to rows.jsonl as it is measured, so a step cut short keeps what it measured.
# torch.compile is left out (minutes of compilation per model): run
#   tools/benchmark.py configs/yolo_parnet_xl_coco.py --resolutions 640 --batch-sizes 32 --precision fp16 \
#       --variants eager channels_last+compile --device cuda --warmup 2
# in a call of its own.
# Results land in $OUT; copy them to docs/benchmarks/h100_fast_paths/ afterwards.
set -uo pipefail
source .device-kit/install.sh && export PYTHONPATH=$PWD:${PYTHONPATH:-}
OUT=${OUT:-work_dirs/h100_fast_paths}
mkdir -p "$OUT"
python3 tools/collect_env.py > "$OUT/env.txt" 2>&1
timeout 90 python3 -m pytest tests/test_inference -q -m "not slow" -p no:cacheprovider 2>&1 | tail -15 \
    | tee "$OUT/cuda_tests.txt"
PARNET_VARIANTS="mmdet eager streams cuda_graph streams+cuda_graph channels_last+cuda_graph streams+channels_last+cuda_graph"
BASELINE_VARIANTS="mmdet eager cuda_graph channels_last+cuda_graph"  # no parallel streams to switch on
measure() {  # model, variants, batch size, time limit (s)
  timeout "$4" python3 tools/benchmark.py "configs/$1.py" --resolutions 640 --batch-sizes "$3" --precision fp16 \
      --variants $2 --device cuda --warmup 5 --iters 20 --repeats 3 --work-dir "$OUT/$1_b$3" 2>&1 \
      | grep --line-buffered -v -i warn | tee "$OUT/$1_b$3.log"
}
measure yolo_parnet_xl_coco "$PARNET_VARIANTS" 1 60
measure yolo_parnet_xl_coco "$PARNET_VARIANTS" 32 90
measure yolo_parnet_xl_csp_coco "$PARNET_VARIANTS" 1 60
measure yolo_parnet_xl_csp_coco "$PARNET_VARIANTS" 32 90
measure yolo_cspdarknet53s_coco "$BASELINE_VARIANTS" 1 45
measure yolo_cspdarknet53s_coco "$BASELINE_VARIANTS" 32 60
