#!/usr/bin/env bash
# Distributed evaluation through torchrun.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 bash tools/dist_test.sh CONFIG CKPT 8   # on node 0
set -euo pipefail
exec bash "$(dirname "$0")/dist_launch.sh" test "$3" "$1" "$2" "${@:4}"
