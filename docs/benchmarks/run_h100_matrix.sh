#!/usr/bin/env bash
# Every open GPU check, as ONE device-tool call of under 9 minutes (cp -r ../shared/device .device-kit first):
#   carry: [".device-kit"], timeout_s: 560, command: bash docs/benchmarks/run_h100_matrix.sh
# Dry run on the CPU: DEVICE=cpu PRESET=cpu MODELS="yolo_parnet_s_coco" TRAIN_LIMIT=60 INFER_LIMIT=60 \
#   PYTHON=.venv/bin/python bash docs/benchmarks/run_h100_matrix.sh
#
# 1. collect_env: "mmcv ops: usable (CPU and CUDA ...)" expected (issue 14: the probe crashed before);
# 2. the CUDA tests of the engine: fast paths against eager with TF32 off, pinned-memory pre-processing (issue 14);
# 3. training-step rows (issue 11: AMP fp16, 640 px, the recipe's batch of 8, with_cp off/on);
# 4. the inference rows of tools/benchmark_matrix.py's gpu preset (issue 11), baseline and 640 px first;
# 5. the reports (regimes.md: every model's ratio to the baseline per regime);
# 6. end2end / network of the channels_last+cuda_graph rows against issue 14's 1.15 target.
# Each step has its own time limit (at most 500 s in all, besides the kit's install). Rows go to $MATRIX_DIR/rows.jsonl as they are measured: a step cut
# short keeps them, and the same call with the rows of an earlier call in docs/benchmarks/h100_matrix/
# measures only the missing ones. Everything comes back as ONE archive, $OUT/h100_matrix.tar.gz
# (only 8 files come back per call), and a compact summary on stdout.
set -uo pipefail
PRESET=${PRESET:-gpu}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-work_dirs/h100_matrix_out}
MATRIX_DIR="$OUT/matrix"
MODEL_ARGS=()
if [[ -n "${MODELS:-}" ]]; then MODEL_ARGS=(--models $MODELS); fi
if [[ "$DEVICE" != cpu ]]; then
    source .device-kit/install.sh && export PYTHONPATH=$PWD:${PYTHONPATH:-}
fi
mkdir -p "$MATRIX_DIR"
if [[ -f docs/benchmarks/h100_matrix/rows.jsonl && ! -f "$MATRIX_DIR/rows.jsonl" ]]; then
    cp docs/benchmarks/h100_matrix/rows.jsonl "$MATRIX_DIR/rows.jsonl"  # resume an earlier call's rows
fi
timeout 60 $PYTHON tools/collect_env.py > "$MATRIX_DIR/env.txt" 2>&1
grep -E '^(mmcv ops|Device|torch):' "$MATRIX_DIR/env.txt"
if [[ "$DEVICE" != cpu ]]; then
    timeout 90 $PYTHON -m pytest tests/test_inference -q -k cuda -p no:cacheprovider 2>&1 | tail -5 \
        | tee "$MATRIX_DIR/cuda_tests.txt"
fi
matrix() {  # part, time limit (s)
    timeout "$2" $PYTHON tools/benchmark_matrix.py --preset "$PRESET" --device "$DEVICE" --part "$1" \
        --work-dir "$MATRIX_DIR" "${MODEL_ARGS[@]}" 2>&1 \
        | grep --line-buffered -E '^\[|^error|rows in' >> "$MATRIX_DIR/progress.log"
}
matrix training "${TRAIN_LIMIT:-110}"
matrix inference "${INFER_LIMIT:-180}"
matrix report 60
tail -3 "$MATRIX_DIR/progress.log"
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
tar -czf "$OUT/h100_matrix.tar.gz" -C "$OUT" matrix
sed -n '/^### /,$p' "$MATRIX_DIR/regimes.md" 2>/dev/null | head -40
