#!/usr/bin/env bash
# Install everything into ./.venv: the Python package (editable) with its built labextension.
# Idempotent: a second run only rebuilds what changed. Needs Python >= 3.10 and Node 20.
# Quiet: one line per step, the tools' output (thousands of lines) goes to ./setup.log, whose last
# lines are printed if a step fails. --verbose (or VERBOSE=1) shows everything instead.
set -euo pipefail
cd "$(dirname "$0")/.."

verbose=${VERBOSE:-0}
for arg in "$@"; do
  case "$arg" in
    --verbose) verbose=1 ;;
    *)
      echo "setup.sh: unknown argument '$arg' (only --verbose)" >&2
      exit 2
      ;;
  esac
done
log=$PWD/setup.log
: >"$log"

# step WHAT COMMAND...: say what is being done, then run it, its output into the log.
step() {
  local what=$1
  shift
  echo "  $what"
  if [ "$verbose" = 1 ]; then
    "$@"
  elif ! "$@" >>"$log" 2>&1; then
    echo "setup.sh: failed: $what; the last lines of $log:" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
}

build_tools() {
  python -m pip install -q --upgrade pip
  # Build tools in the venv, so the editable install needs no isolated build env (faster, fewer downloads).
  python -m pip install -q "jupyterlab>=4.6,<5" "hatchling>=1.5" "hatch-nodejs-version>=0.3.2" \
    "hatch-jupyter-builder>=0.9" editables
}

install_package() {
  # On a second run the extension's folder is the link that `labextension develop` made: pip would
  # write its install.json through it into advisor/labextension, and a wheel built later has two.
  local link=.venv/share/jupyter/labextensions/jupyterlab-performance-advisor
  if [ -L "$link" ]; then rm "$link"; fi
  rm -f advisor/labextension/install.json
  python -m pip install -q --no-build-isolation -e ".[test]"
}

enable_extension() {
  jupyter labextension develop . --overwrite
  jupyter server extension enable advisor --sys-prefix
}

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  step "creating the virtual environment ./.venv" "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
step "installing JupyterLab and the build tools (pip)" build_tools
step "installing the JavaScript packages (jlpm install)" jlpm install --immutable
step "building the extension (jlpm build)" jlpm build
step "installing the Python package and the trace scanner (pip install -e)" install_package
step "enabling the extension in JupyterLab" enable_extension
