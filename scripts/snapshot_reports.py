"""Write the JSON report of every reference case into a folder, with run-dependent fields removed,
so that two folders (before and after a refactoring) can be compared with `diff -r`.

Cases: the real profiles under ../shared/corpus (when present), every generator fault injected alone,
and the healthy controls of tests/test_trust.py. Usage: python scripts/snapshot_reports.py DEST
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# This checkout's `advisor`, first: the venv's editable install may be another worktree's (from a
# worktree, the snapshots of the main checkout's code were written, and two folders always agreed).
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advisor.engine import run_analysis  # noqa: E402
from advisor.report.jsonout import report_json_text  # noqa: E402
from advisor.synth import SynthSpec, write_synth_profile  # noqa: E402
from tests.engine_fixtures import DB_CORPUS, TEXT_CORPUS  # noqa: E402
from tests.test_trust import CASES, HEALTHY, STEPS  # noqa: E402

# Fields that differ between two runs of the same input: clocks, durations and where things are.
VOLATILE = {"generated_at", "generated", "elapsed", "timings", "duration_s", "input", "path", "root",
            "output", "tool_version", "timings_s"}  # fmt: skip


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


def _write(dest: Path, name: str, profile: Path, compare: Path | None = None) -> None:
    report = run_analysis(profile, compare_path=compare)
    data = _stable(json.loads(report_json_text(report)))
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False).replace(str(profile), "<profile>")
    (dest / f"{name}.json").write_text(text + "\n", encoding="utf-8")


def main(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    work = dest / "_profiles"
    if TEXT_CORPUS.exists():
        _write(dest, "corpus_text", TEXT_CORPUS)
        _write(dest, "corpus_db", DB_CORPUS)
        _write(dest, "corpus_text_vs_db", TEXT_CORPUS, DB_CORPUS)
    for name, (_, spec) in sorted(CASES.items()):
        _write(dest, f"fault_{name}", write_synth_profile(work / name, spec=spec))
    for name, extra in sorted(HEALTHY.items()):
        spec = SynthSpec(steps=STEPS, seed=11, **extra)
        _write(dest, f"healthy_{name}", write_synth_profile(work / f"healthy_{name}", spec=spec))
    print(f"{dest}: {len(list(dest.glob('*.json')))} reports")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
