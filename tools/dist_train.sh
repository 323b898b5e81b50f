#!/usr/bin/env bash
# Distributed training through torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py arguments...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 bash tools/dist_train.sh CONFIG 8   # on node 0
set -euo pipefail
exec bash "$(dirname "$0")/dist_launch.sh" train "$2" "$1" "${@:3}"
