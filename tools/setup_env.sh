#!/usr/bin/env bash
# Create or refresh the project environment in .venv (idempotent).
#
# * torch / torchvision and the build requirements from requirements/build.txt;
# * mmcv 2.1.0 built from the package index's source with compiled ops (CUDA ops when a CUDA
#   device is usable, CPU ops otherwise), without build isolation and with C++20 (torch >= 2.14
#   headers need it; mmcv's setup.py hard-codes -std=c++17). The wheel is cached in
#   ${PARNET_DET_CACHE:-${XDG_CACHE_HOME:-~/.cache}/parnet_det}/wheels, keyed by mmcv, torch and
#   Python version and CPU/CUDA, and reused by every later set-up on this machine;
# * the runtime, ImageNet (mmpretrain: optional for detection, the demo and the tests use it), deploy and
#   test requirements, and parnet_det itself (editable).
#
# A stamp in .venv records a hash of every input; when it matches, the script only checks that
# the environment imports and returns in a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON_BIN="${PYTHON:-python3.11}"
MMCV_VERSION=2.1.0
CACHE_DIR="${PARNET_DET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parnet_det}"
STAMP="$VENV/.parnet_det_setup"

log() { echo "[setup_env] $*" >&2; }

inputs_hash() {
    cat "$ROOT"/requirements/*.txt "$ROOT/pyproject.toml" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1
}

env_imports() {
    "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import mmcv, mmcv.ops, mmdet, mmengine, mmpretrain, parnet_det, pycocotools, pytest  # noqa: F401
from mmcv.ops import nms  # a compiled op, not only the Python package
PY
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(inputs_hash)" ]] && env_imports; then
    log "environment in .venv is up to date"
    exit 0
fi

command -v "$PYTHON_BIN" >/dev/null || { log "error: $PYTHON_BIN not found; set PYTHON=/path/to/python3.11"; exit 1; }
[[ -x "$VENV/bin/python" ]] || { log "creating $VENV"; "$PYTHON_BIN" -m venv "$VENV"; }
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --quiet --disable-pip-version-check)

log "installing build requirements (torch, setuptools<81, ...)"
"${PIP[@]}" -r "$ROOT/requirements/build.txt"

read -r TORCH_VERSION PY_TAG WITH_CUDA < <("$PY" - <<'PY'
import sys, torch
cuda = torch.cuda.is_available() and torch.version.cuda is not None
print(torch.__version__.split('+')[0], f'cp{sys.version_info[0]}{sys.version_info[1]}',
      f'cu{torch.version.cuda.replace(".", "")}' if cuda else 'cpu')
PY
)
WHEEL_DIR="$CACHE_DIR/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PY_TAG-$WITH_CUDA"

if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "no cached mmcv wheel in $WHEEL_DIR: building mmcv $MMCV_VERSION with $WITH_CUDA ops (about 11 min on 2 CPU cores)"
    BUILD_DIR="$(mktemp -d)"
    trap 'rm -rf "$BUILD_DIR"' EXIT
    "$PY" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
        "mmcv==$MMCV_VERSION" -d "$BUILD_DIR"
    tar -xzf "$BUILD_DIR/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD_DIR"
    SRC="$BUILD_DIR/mmcv-$MMCV_VERSION"
    # torch >= 2.14's headers use C++20 features; mmcv hard-codes C++17 for every extension.
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    grep -q -- '-std=c++20' "$SRC/setup.py" || { log "error: could not switch mmcv's build to C++20"; exit 1; }
    export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    if [[ "$WITH_CUDA" != cpu ]]; then export FORCE_CUDA=1; fi
    (cd "$SRC" && "$PY" -m pip wheel --quiet --no-deps --no-build-isolation . -w "$BUILD_DIR/dist")
    # Publish atomically so a concurrent or interrupted set-up never sees half a wheel.
    mkdir -p "$CACHE_DIR/wheels"
    TMP_DIR="$(mktemp -d "$CACHE_DIR/wheels/.tmp.XXXXXX")"
    cp "$BUILD_DIR"/dist/mmcv-*.whl "$TMP_DIR/"
    mv -T "$TMP_DIR" "$WHEEL_DIR" 2>/dev/null || rm -rf "$TMP_DIR"
else
    log "reusing cached mmcv wheel from $WHEEL_DIR"
fi
"${PIP[@]}" --no-deps "$WHEEL_DIR"/mmcv-*.whl

log "installing runtime and test requirements and parnet_det (editable)"
# mmcv's own requirements (addict, yapf, ...) come from its wheel's metadata.
"${PIP[@]}" "$WHEEL_DIR"/mmcv-*.whl -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/imagenet.txt" \
    -r "$ROOT/requirements/deploy.txt" -r "$ROOT/requirements/tests.txt"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

env_imports || { log "error: the environment does not import (mmcv ops / mmdet / mmpretrain / parnet_det)"; exit 1; }
inputs_hash > "$STAMP"
log "environment ready: $VENV"
