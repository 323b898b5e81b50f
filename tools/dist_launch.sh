#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: run tools/TOOL.py in PROCS processes per node
# through torchrun, one node or several (NNODES, NODE_RANK, MASTER_ADDR, PORT as in OpenMMLab).
# Without GPUs the processes use the CPU (gloo backend).
#   bash tools/dist_launch.sh TOOL PROCS [tool arguments...]
set -euo pipefail
TOOL=$1
PROCS=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$PROCS" \
    "$ROOT/tools/$TOOL.py" "${@:3}" --launcher pytorch
