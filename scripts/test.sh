#!/usr/bin/env bash
# Run every test suite: lint, pytest (engine, CLI, server), jest, packaging checks, the wheel in a
# fresh venv without node, and the browser tests (Galata on Debian Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate

step() { printf '\n=== %s\n' "$*"; }

step "lint"
ruff check .
ruff format --check .
jlpm lint:check

step "extension registration"
jupyter server extension list 2>&1 | tee /tmp/pa-server-ext.txt
grep -E "advisor.*OK" /tmp/pa-server-ext.txt
jupyter labextension list 2>&1 | tee /tmp/pa-lab-ext.txt
grep -E "jupyterlab-performance-advisor.*enabled.*OK" /tmp/pa-lab-ext.txt
python -m jupyterlab.browser_check --no-browser-test --allow-root

step "jest"
jlpm test

step "wheel in a fresh venv without node"
bash scripts/check_wheel.sh

step "browser tests (Galata, Debian Chromium)"
bash scripts/ui_tests.sh

step "pytest"
# The tests on real profiles (../shared/corpus) skip where it is absent; say which case this is, and
# list the skips (-rs), so a run without them never reads as a full pass.
# PERFORMANCE_ADVISOR_REQUIRE_CORPUS=1 makes them fail instead, on machines known to hold it.
if [ -d ../shared/corpus ]; then
  echo "corpus: ../shared/corpus present"
else
  echo "corpus: ../shared/corpus absent, the tests on real profiles skip"
fi
# The C trace scanner's tests must run, not skip: setup.sh compiled it.
PERFORMANCE_ADVISOR_REQUIRE_SCANNER=1 python -m pytest -q -rs
