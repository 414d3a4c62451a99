#!/usr/bin/env bash
# Build the wheel and prove it installs and loads in a fresh venv with no node on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. .venv/bin/activate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" .
# The report's plotly.js bundle is a build output (gitignored): the wheel must carry it.
# So is the compiled C trace scanner (hatch_build.py), which makes the wheel platform-specific.
python -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
assert 'advisor/report/vendor/plotly-cartesian.min.js' in names, 'no plotly bundle in the wheel'; \
assert any(n.startswith('advisor/formats/ascend_text/_tracescan.') for n in names), 'no trace scanner in the wheel'; \
assert not sys.argv[1].endswith('-none-any.whl'), 'a pure-Python wheel tag'" "$work"/dist/*.whl
python -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/dist/*.whl jupyterlab
# Only the venv on PATH: node and jlpm are out of reach.
run() { env -i HOME="$work" PATH="$work/venv/bin" JUPYTER_PLATFORM_DIRS=1 "$@"; }
if run /bin/sh -c 'command -v node'; then echo "node is visible" >&2; exit 1; fi
run "$work/venv/bin/python" -c "from advisor.formats.ascend_text import _tracescan"
run "$work/venv/bin/jupyter" labextension list 2>&1 | tee "$work/lab.txt"
grep -E "jupyterlab-performance-advisor.*enabled.*OK.*\(python, jupyterlab-performance-advisor\)" "$work/lab.txt"
run "$work/venv/bin/jupyter" server extension list 2>&1 | tee "$work/server.txt"
grep -E "advisor.*OK" "$work/server.txt"
# The panel's Chinese catalogue ships as JupyterLab finds an extension's: jupyterlab.locale entry point.
run "$work/venv/bin/python" -c "from jupyterlab_server.translation_utils import get_installed_packages_locale; \
data, _ = get_installed_packages_locale('zh_CN'); \
assert data['jupyterlab_performance_advisor']['Submit'] == ['提交'], 'no zh_CN catalogue in the wheel'"
cd "$work"
run "$work/venv/bin/performance-advisor" demo "$work/demo" >/dev/null
run "$work/venv/bin/performance-advisor" analyze "$work/demo" --output "$work/out" --quiet
ls "$work"/out/demo_*.html >/dev/null
echo "wheel OK"
