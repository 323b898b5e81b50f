#!/usr/bin/env bash
# Issue 35's CPU timings, on an idle machine (nothing else running: the rows are timed):
#   bash docs/benchmarks/run_cpu_int8.sh              # every step; STEPS="int8 streams profiles" picks some
# 1. int8: the INT8 rows of the per-runtime table: ParNet-S / XL / XL-CSP on YOLOv4-CSP's neck and head, YOLOv4-CSP,
#    RTMDet-m/-l and YOLOX-L, 320 and 512 px, batch 1, 2 threads, network and end to end, in ONNX Runtime and
#    OpenVINO (variants onnxruntime-int8, openvino-int8), interleaved and paired as the fp32 rows of
#    docs/benchmarks/cpu_runtimes/ (copied into the work dir first: those rows are not measured again; eager stays
#    the reference variant). Each model and size is calibrated once (8 images, its seconds in the row apart from
#    latency). The reports are written over all rows; runtimes.md quotes the AP change measured on the demo's
#    trained detectors (int8_accuracy.jsonl, copied in too) beside each INT8 row. Copy the work dir's rows.jsonl,
#    results.*, regimes.md, runtimes.md and latency_per_runtime.png back to docs/benchmarks/cpu_runtimes/.
# 2. streams: the stream-parallel settings against each runtime's default, ParNet-S against YOLOv4-CSP, 320 px,
#    batch 1, network and end to end, at 1 and 2 threads (the cores this machine has), fp32 and INT8.
# 3. profiles: milliseconds per operator type, YOLOv4-CSP and ParNet-S, 320 px, 2 threads, fp32 and INT8, both
#    runtimes (tools/deploy/profile_runtime.py), for the summary under the per-runtime table.
set -uo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
STEPS=${STEPS:-"int8 streams profiles"}
WORK=${WORK:-work_dirs/cpu_int8}
mkdir -p "$WORK"
if [[ " $STEPS " == *" int8 "* ]]; then
    mkdir -p "$WORK/matrix"
    [[ -f "$WORK/matrix/rows.jsonl" ]] || cp docs/benchmarks/cpu_runtimes/rows.jsonl "$WORK/matrix/rows.jsonl"
    cp docs/benchmarks/cpu_runtimes/int8_accuracy.jsonl "$WORK/matrix/int8_accuracy.jsonl"
    $PYTHON tools/benchmark_matrix.py --preset cpu --work-dir "$WORK/matrix" --part inference \
        --models yolov4_csp_parnet_s_coco yolov4_csp_parnet_xl_coco yolov4_csp_parnet_xl_csp_coco \
        reference/rtmdet_m_coco reference/rtmdet_l_coco reference/yolox_l_coco \
        --variants eager onnxruntime openvino onnxruntime-int8 openvino-int8 2>&1 | tee "$WORK/int8.log"
fi
if [[ " $STEPS " == *" streams "* ]]; then
    for threads in 1 2; do
        $PYTHON tools/benchmark.py configs/yolov4_csp_parnet_s_coco.py --baseline configs/yolov4_csp_coco.py \
            --device cpu --resolutions 320 --threads "$threads" --warmup 1 --repeats 5 \
            --variants onnxruntime onnxruntime+parallel openvino openvino+unpinned onnxruntime-int8 \
            onnxruntime-int8+parallel openvino-int8 --work-dir "$WORK/streams_${threads}t" 2>&1 \
            | tee "$WORK/streams_${threads}t.log"
    done
fi
if [[ " $STEPS " == *" profiles "* ]]; then
    for config in yolov4_csp_coco yolov4_csp_parnet_s_coco; do
        $PYTHON tools/deploy/profile_runtime.py "configs/$config.py" --resolution 320 --threads 2 \
            --precisions fp32 int8 --runs 10 2>&1 | tee "$WORK/profile_$config.md"
    done
fi
