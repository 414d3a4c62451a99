#!/usr/bin/env bash
# Quick start: install everything, write a demo profile into ./profiling_dir1 and open JupyterLab
# on 127.0.0.1 with token authentication. Extra arguments go to `jupyter lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
if [ ! -e profiling_dir1 ]; then
  performance-advisor demo profiling_dir1
fi
extra=()
if [ "$(id -u)" = 0 ]; then
  extra+=(--allow-root)
fi
exec jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$PWD" "${extra[@]}" "$@"
