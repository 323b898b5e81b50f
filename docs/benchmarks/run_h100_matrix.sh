#!/usr/bin/env bash
# Every open GPU check, as ONE call on a GPU machine (an H100 or H200): bash docs/benchmarks/run_h100_matrix.sh
# On a machine without the project's environment, an install kit in .device-kit/ (its install.sh sets the
# environment up) is sourced first where it exists; elsewhere the environment is the caller's (PYTHON=...).
# Dry run on the CPU (minutes; a tiny model, short repeats and limits):
#   DEVICE=cpu PRESET=cpu MODELS="demo/yolo_parnet_tiny_synthetic" BASELINE=demo/yolo_cspdarknet53s_tiny_synthetic \
#   PROTOCOL="320:fp32:channels_last" PROTOCOL_MODELS="demo/yolo_parnet_tiny_synthetic" VARIANTS="eager openvino" \
#   STAGES="320:1:fp32" MIN_REPEAT=0.05 STAGE_LIMIT=180 TRAIN_LIMIT=60 REST_LIMIT=0 PYTHON=.venv/bin/python \
#   bash docs/benchmarks/run_h100_matrix.sh
#
# The protocol of issue 21: every model folded alike (rows count folded and foldable-left BatchNorms), the
# models of a setting timed in alternation (A B A B ...), each repeat >= 0.2 s on the GPU, ratios with their
# spread. Steps:
# 1. collect_env: "mmcv ops: usable (CPU and CUDA ...)" expected;
# 2. RTMDet's protocol row (FP16, batch 1, network without NMS, 640 px) for RTMDet-l, YOLOv4-CSP, ParNet-XL and
#    XL-CSP on YOLOv4-CSP's neck and head, on the fastest path this machine has: channels-last +
#    torch.compile max-autotune + CUDA graphs (no TensorRT here: no registry to install it from; every row
#    names its path in "path"), then the same models end to end on that path;
# 3. the CUDA tests of the engine: fast paths (max-autotune + CUDA graphs too) against eager with TF32 off,
#    pinned-memory pre-processing;
# 4. inference rows of tools/benchmark_matrix.py's gpu preset, stage by stage, every model in each stage:
#    640 px batch 1 fp16 (the paper's regime), 640 px batch 32 fp16, then the rest of the matrix;
# 5. training-step rows (AMP fp16, 640 px, the recipe's batch, with_cp off/on);
# 5b. the many-core CPU row (issue 35): ParNet-S against YOLOv4-CSP at 320 px, batch 1, on all the host's cores,
#    ONNX Runtime and OpenVINO in fp32 (their defaults and their stream-parallel settings) and INT8, into
#    work_dirs/h100_matrix/cpu_many_core/ (a runtime the machine lacks is skipped in one line; CPU_LIMIT=0 skips);
# 6. the reports (regimes.md: every model's ratio to its recipe's baseline, per regime, with spreads;
#    runtimes.md: per path and input size, latency, FPS, ratio and the published AP, quoted;
#    end2end / network of the fast path against the 1.15 target).
# Rows go to work_dirs/h100_matrix/rows.jsonl as they are measured; after every step the whole folder is
# packed again into $OUT/h100_matrix.tar.gz, the one file that comes back, so a call cut short keeps what it
# measured. The same call again, with that archive unpacked into work_dirs/ first (or its rows.jsonl in
# docs/benchmarks/h100_matrix/), measures only the missing rows. Each step gets its limit, cut to what is left
# of BUDGET seconds (default 560, counted from the start, the kit's install included: 4-6 min when it builds
# mmcv); a step with under 40 s left is skipped (said in the output), the report is always written.
set -uo pipefail
PRESET=${PRESET:-gpu}
BUDGET=${BUDGET:-560}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-work_dirs/h100_matrix_out}
MATRIX_DIR=${MATRIX_DIR:-work_dirs/h100_matrix}
STAGES=${STAGES:-"640:1:fp16 640:32:fp16"}
PROTOCOL=${PROTOCOL:-"640:fp16:channels_last+max_autotune+cuda_graph"}  # side:precision:variant, batch 1
# Their baseline (yolov4_csp_coco) is added by the matrix. The models of a mode are all set up (max-autotune's
# compilation: minutes), then timed together: a step killed before its timing keeps nothing, so each row's set-up
# gets at most its share of the step (PROTOCOL_ROW_LIMIT, default 60 s; a row over it is kept as a timeout and
# the preset's channels_last+cuda_graph rows of step 4 still answer at 640 px batch 1 fp16).
PROTOCOL_MODELS=${PROTOCOL_MODELS:-"yolov4_csp_parnet_xl_coco yolov4_csp_parnet_xl_csp_coco reference/rtmdet_l_coco"}
BASELINE_ARGS=()
if [[ -n "${BASELINE:-}" ]]; then BASELINE_ARGS=(--baseline "$BASELINE"); fi
if [[ -n "${MIN_REPEAT:-}" ]]; then BASELINE_ARGS+=(--min-repeat-time "$MIN_REPEAT"); fi
MODEL_ARGS=("${BASELINE_ARGS[@]}")
if [[ -n "${MODELS:-}" ]]; then MODEL_ARGS+=(--models $MODELS); fi
if [[ -n "${VARIANTS:-}" ]]; then MODEL_ARGS+=(--variants $VARIANTS); fi  # instead of the preset's, after step 3
if [[ "$DEVICE" != cpu && -f .device-kit/install.sh ]]; then
    source .device-kit/install.sh
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
mkdir -p "$MATRIX_DIR" "$OUT"
if [[ -f docs/benchmarks/h100_matrix/rows.jsonl && ! -f "$MATRIX_DIR/rows.jsonl" ]]; then
    cp docs/benchmarks/h100_matrix/rows.jsonl "$MATRIX_DIR/rows.jsonl"  # resume an earlier call's rows
fi
pack() { tar -czf "$OUT/h100_matrix.tar.gz.part" -C "$(dirname "$MATRIX_DIR")" "$(basename "$MATRIX_DIR")" \
    && mv "$OUT/h100_matrix.tar.gz.part" "$OUT/h100_matrix.tar.gz"; }
matrix() {  # time limit (s), then benchmark_matrix.py arguments (models included); the output goes to matrix.log
    local limit=$1; shift
    local left=$((BUDGET - SECONDS - 30))  # 30 s kept for the report and the packing
    if (( limit <= 0 )); then echo "step $* not asked for (limit 0)"; return; fi
    if (( left < 40 )); then echo "step $* skipped: ${left}s of the budget left"; return; fi
    (( limit > left )) && limit=$left
    timeout "$limit" $PYTHON tools/benchmark_matrix.py --preset "$PRESET" --device "$DEVICE" \
        --work-dir "$MATRIX_DIR" "$@" >> "$MATRIX_DIR/matrix.log" 2>&1
    echo "step $* ended with $? after at most ${limit}s; $(wc -l < "$MATRIX_DIR/rows.jsonl" 2>/dev/null || echo 0) rows"
    pack
}
timeout 30 $PYTHON tools/collect_env.py > "$MATRIX_DIR/env.txt" 2>&1
grep -E '^(mmcv ops|Device|torch):' "$MATRIX_DIR/env.txt"
pack
IFS=: read -r side precision variant <<< "$PROTOCOL"
protocol_rows=$(( $(wc -w <<< "$PROTOCOL_MODELS") + 1 ))  # and their baseline
for mode in network end2end; do  # RTMDet's protocol row first, then the same models end to end
    limit=$(( BUDGET - SECONDS - 30 )); (( limit > ${PROTOCOL_LIMIT:-240} )) && limit=${PROTOCOL_LIMIT:-240}
    row_limit=$(( (limit - 20) / protocol_rows )); (( row_limit > ${PROTOCOL_ROW_LIMIT:-60} )) && row_limit=${PROTOCOL_ROW_LIMIT:-60}
    (( row_limit < 1 )) && row_limit=1  # matrix() skips the step anyway: under 40 s left
    matrix "$limit" --part inference --models $PROTOCOL_MODELS "${BASELINE_ARGS[@]}" --resolutions "$side" \
        --batch-sizes 1 --precisions "$precision" --variants "$variant" --modes "$mode" --row-time-limit "$row_limit"
done
if [[ "$DEVICE" != cpu ]]; then  # after the protocol rows: max-autotune's own test compiles for a minute
    timeout 120 $PYTHON -m pytest tests/test_inference -q -k cuda -p no:cacheprovider > "$MATRIX_DIR/cuda_tests.txt" 2>&1
    tail -3 "$MATRIX_DIR/cuda_tests.txt"
    pack
fi
for stage in $STAGES; do  # side:batch:precision
    IFS=: read -r side batch precision <<< "$stage"
    matrix "${STAGE_LIMIT:-150}" --part inference "${MODEL_ARGS[@]}" --resolutions "$side" --batch-sizes "$batch" \
        --precisions "$precision"
done
matrix "${TRAIN_LIMIT:-90}" --part training "${MODEL_ARGS[@]}"
cpu_limit=${CPU_LIMIT:-120}; cpu_left=$((BUDGET - SECONDS - 30)); (( cpu_limit > cpu_left )) && cpu_limit=$cpu_left
if (( cpu_limit >= 40 )); then  # 5b: the stream-parallel forms where there are cores to run streams on
    timeout "$cpu_limit" $PYTHON tools/benchmark.py configs/yolov4_csp_parnet_s_coco.py \
        --baseline configs/yolov4_csp_coco.py --device cpu --resolutions 320 --threads "$(nproc)" --warmup 1 \
        --repeats 3 --min-repeat-time 0.5 --variants onnxruntime onnxruntime+parallel openvino \
        openvino+tensor_parallel onnxruntime-int8 openvino-int8 --work-dir "$MATRIX_DIR/cpu_many_core" \
        >> "$MATRIX_DIR/matrix.log" 2>&1
    echo "many-core CPU step ended with $? after at most ${cpu_limit}s"
    pack
else
    echo "many-core CPU step skipped: ${cpu_left}s of the budget left (or CPU_LIMIT=0)"
fi
matrix "${REST_LIMIT:-150}" --part inference "${MODEL_ARGS[@]}"
timeout 40 $PYTHON tools/benchmark_matrix.py --preset "$PRESET" --device "$DEVICE" --work-dir "$MATRIX_DIR" \
    "${MODEL_ARGS[@]}" --part report >> "$MATRIX_DIR/matrix.log" 2>&1
echo "report ended with $?"
$PYTHON - "$MATRIX_DIR/rows.jsonl" <<'PY' 2>&1 | tee "$MATRIX_DIR/end2end_vs_network.txt"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
ms = {(r['model'], r['variant'], r['precision'], r['resolution'], r['batch_size'], r['mode']): r['ms_per_batch_median']
      for r in rows if r.get('status', 'ok') == 'ok' and r['mode'] != 'train_step'}
for key, network in sorted(ms.items()):
    if key[-1] == 'network' and key[1] != 'mmdet' and key[:-1] + ('end2end', ) in ms:
        ratio = ms[key[:-1] + ('end2end', )] / network
        print(' '.join(map(str, key[:-1])), f'network {network:.2f} ms end2end/network {ratio:.3f}',
              'within 1.15' if ratio <= 1.15 else 'OVER 1.15')
PY
pack
sed -n '/^### /,$p' "$MATRIX_DIR/regimes.md" 2>/dev/null | head -60
