#!/usr/bin/env bash
# Quick start: install everything, write a demo profile into ./profiling_dir1 and open JupyterLab
# on 127.0.0.1 with token authentication. Quiet: one line per install step (the tools' output goes
# to ./setup.log) and only JupyterLab's warnings, so that its URL with the token is the last thing
# on the screen. --verbose shows the installs and JupyterLab's whole log. Other arguments go to
# `jupyter lab`.
set -euo pipefail
cd "$(dirname "$0")/.."

setup_args=()
lab_args=()
for arg in "$@"; do
  if [ "$arg" = --verbose ]; then
    setup_args+=(--verbose)
  else
    lab_args+=("$arg")
  fi
done

echo "Installing into ./.venv (the first run takes several minutes; details in ./setup.log):"
bash scripts/setup.sh "${setup_args[@]}"
# shellcheck disable=SC1091
. .venv/bin/activate
if [ ! -e profiling_dir1 ]; then
  performance-advisor demo profiling_dir1
fi
if [ "$(id -u)" = 0 ]; then
  lab_args+=(--allow-root)
fi
if [ ${#setup_args[@]} -eq 0 ]; then
  # The server logs its URL with a generated token as "critical": it still shows, and stays last.
  lab_args=(--log-level=WARN "${lab_args[@]}")
fi
echo "Starting JupyterLab: open the URL with its token below (Ctrl+C stops the server)."
exec jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$PWD" "${lab_args[@]}"
