#!/usr/bin/env bash
# Install everything into ./.venv: the Python package (editable) with its built labextension.
# Idempotent: a second run only rebuilds what changed. Needs Python >= 3.10 and Node 20.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
# Build tools in the venv, so the editable install needs no isolated build env (faster, fewer downloads).
python -m pip install -q "jupyterlab>=4.6,<5" "hatchling>=1.5" "hatch-nodejs-version>=0.3.2" "hatch-jupyter-builder>=0.9" editables

jlpm install --immutable
jlpm build
# On a second run the extension's folder is the link that `labextension develop` made: pip would
# write its install.json through it into advisor/labextension, and a wheel built later has two.
link=.venv/share/jupyter/labextensions/jupyterlab-performance-advisor
if [ -L "$link" ]; then rm "$link"; fi
rm -f advisor/labextension/install.json
python -m pip install -q --no-build-isolation -e ".[test]"
jupyter labextension develop . --overwrite >/dev/null
jupyter server extension enable advisor --sys-prefix >/dev/null
