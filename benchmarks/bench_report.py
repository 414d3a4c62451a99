"""Report rendering at cluster size: HTML/XLSX/JSON bytes and seconds, and the HTML's load time in Chromium.

    python benchmarks/bench_report.py [--ranks 64] [--synth DIR] [--chromium /usr/bin/chromium] [--keep DIR]

Without --synth the report is `advisor.report.sample.sample_report(ranks)` (a finding in every dimension,
a per-link table of every rank pair). With --synth DIR a profile of `--ranks` ranks is generated there
once (small per rank, kept for later runs) and analysed with every check first.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advisor.report.html import render_html
from advisor.report.jsonout import report_json_text
from advisor.report.model import Report
from advisor.report.sample import sample_report
from advisor.report.xlsx import write_xlsx

PROBE = (
    "<script>window.addEventListener('load',function(){setTimeout(function(){"
    "var d=document.createElement('div');d.id='pa-probe';d.textContent=Math.round(performance.now());"
    "document.body.appendChild(d)},0)})</script>"
)


def synth_report(data: Path, ranks: int) -> Report:
    from advisor.engine import run_analysis
    from advisor.synth import SynthSpec, write_synth_profile

    target = data / f"synth_{ranks}r"
    if not target.exists():
        started = time.perf_counter()
        write_synth_profile(target, SynthSpec(ranks=ranks, layers=2, steps=(12, 13), seed=1))
        print(f"generated {ranks} ranks in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    started = time.perf_counter()
    report = run_analysis(target)
    print(f"analysed in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return report


def chromium_load_ms(browser: str, html: str, runs: int = 3) -> list[int]:
    """performance.now() at the load event (parse, plotly.js, first chart, page script), per run."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
        for _ in range(runs):
            out = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                capture_output=True,
                text=True,
                timeout=300,
            ).stdout
            match = re.search(r'<div id="pa-probe">(\d+)</div>', out)
            if match:
                times.append(int(match.group(1)))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ranks", type=int, default=64)
    parser.add_argument(
        "--synth", type=Path, help="generate (once) and analyse a synth profile in this folder"
    )
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--keep", type=Path, help="write the reports into this folder")
    args = parser.parse_args()

    report = synth_report(args.synth, args.ranks) if args.synth else sample_report(args.ranks)
    out = args.keep or Path(tempfile.mkdtemp(prefix="bench_report_"))
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {
        "source": "synth" if args.synth else "sample",
        "ranks": len(report.input.ranks),
        "findings": len(report.findings),
        "evidence_rows": sum(len(e.rows) for f in report.findings for e in f.evidence),
    }
    render_html(report)  # warm: templates, catalogue and plotly.js read once
    started = time.perf_counter()
    html = render_html(report)
    results["html_s"] = round(time.perf_counter() - started, 3)
    results["html_mb"] = round(len(html.encode("utf-8")) / 1e6, 3)
    (out / "report.html").unlink(missing_ok=True)
    (out / "report.html").write_text(html, encoding="utf-8")

    (out / "report.xlsx").unlink(missing_ok=True)
    started = time.perf_counter()
    write_xlsx(report, out / "report.xlsx")
    results["xlsx_s"] = round(time.perf_counter() - started, 3)
    results["xlsx_mb"] = round((out / "report.xlsx").stat().st_size / 1e6, 3)

    started = time.perf_counter()
    text = report_json_text(report)
    results["json_s"] = round(time.perf_counter() - started, 3)
    results["json_mb"] = round(len(text.encode("utf-8")) / 1e6, 3)

    if args.chromium:
        results["chromium_load_ms"] = chromium_load_ms(args.chromium, html)
    results["output"] = str(out)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
