#!/usr/bin/env bash
# The speed comparison on the H100, as one device-tool call (under 9 minutes):
#   carry: [".device-kit"], timeout_s: 560, command: bash docs/benchmarks/run_h100_matrix.sh
# (first: cp -r ../shared/device .device-kit). Test it on the CPU first: DEVICE=cpu PRESET=cpu bash ...
#
# 1. environment report;
# 2. training throughput rows (AMP fp16, 640 px, the recipe's batch of 8, with_cp off/on), 150 s at most;
# 3. inference rows of the gpu preset (tools/benchmark_matrix.py), the rest of the time.
# Rows go to $OUT/matrix/rows.jsonl as they are measured and a cut step keeps them: the same call
# again (with the rows.jsonl of the first call copied back to docs/benchmarks/h100_matrix/ and
# MATRIX_DIR pointing there) measures only the missing rows. Everything comes back as ONE archive,
# $OUT/h100_matrix.tar.gz (only 8 files come back per call), plus a compact summary on stdout.
set -uo pipefail
PRESET=${PRESET:-gpu}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-work_dirs/h100_matrix_out}
MATRIX_DIR=${MATRIX_DIR:-$OUT/matrix}
if [[ "$DEVICE" != cpu ]]; then
    source .device-kit/install.sh && export PYTHONPATH=$PWD:${PYTHONPATH:-}
fi
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" "$MATRIX_DIR"
if [[ -f docs/benchmarks/h100_matrix/rows.jsonl && ! -f "$MATRIX_DIR/rows.jsonl" ]]; then
    cp docs/benchmarks/h100_matrix/rows.jsonl "$MATRIX_DIR/rows.jsonl"  # resume an earlier call's rows
fi
timeout 60 $PYTHON tools/collect_env.py > "$MATRIX_DIR/env.txt" 2>&1
matrix() {  # part, time limit (s)
    timeout "$2" $PYTHON tools/benchmark_matrix.py --preset "$PRESET" --device "$DEVICE" --part "$1" \
        --work-dir "$MATRIX_DIR" 2>&1 | grep --line-buffered -E '^\[|^error|wrote|rows in' | tee -a "$MATRIX_DIR/progress.log"
}
matrix training "${TRAIN_LIMIT:-150}"
matrix inference "${INFER_LIMIT:-330}"
# The reports over every row measured so far (a step cut by its limit wrote none).
matrix report 60
tar -czf "$OUT/h100_matrix.tar.gz" -C "$(dirname "$MATRIX_DIR")" "$(basename "$MATRIX_DIR")"
cat "$MATRIX_DIR/regimes.md" 2>/dev/null | head -60
