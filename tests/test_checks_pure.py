"""Every check is a pure function of the tables it declares: no check module reads a file, lists a
folder or calls a table loader (docs/design.md "Checks"). The knowledge loader (checks/knowledge) is
the one reader of package data; formats read files into tables."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import advisor.checks
from advisor.checks.common import Gain, finding
from advisor.checks.registry import check, unregister
from advisor.report.model import Finding

CHECKS = Path(advisor.checks.__file__).parent
# Calls that read or list files, open a database or load a table, by the name called.
FILE_CALLS = frozenset(
    {
        "open", "read_text", "read_bytes", "glob", "rglob", "iterdir", "walk", "listdir", "scandir",
        "load", "connect", "load_table", "load_metadata", "read_metadata", "read_small_json",
        "read_json", "read_csv", "read_sql", "read_sql_query", "read_parquet", "read_excel",
        "read_table", "read_feather", "read_pickle", "fromfile", "loadtxt", "genfromtxt",
    }
)  # fmt: skip
FILE_MODULES = frozenset({"os", "glob", "sqlite3", "shutil", "pathlib", "io"})
# What a check may take from the formats' side: the domain model and the table contracts.
# The training checks take the parsed training log (its model module reads nothing; issue 21).
PROFILE_MODEL = {
    "advisor.model": {"DEVICES", "ProfileSet", "RankInfo"},
    "advisor.formats.training_log.model": {"TrainingLog"},
}
TABLE_CONTRACTS = "advisor.formats.schema"
# Packages whose modules read profiles (beside the allowed model and contracts).
READERS = ("advisor.formats", "advisor.model")


def _module_of(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def impurities(source: str, package: str = "advisor.checks") -> list[str]:
    """What in a check module's source reads files, lists folders or loads tables ("line: what")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FILE_CALLS or name.startswith("read_"):
                found.append(f"{node.lineno}: calls {name}()")
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: imports {a.name}"
                for a in node.names
                if a.name.split(".")[0] in FILE_MODULES or a.name.startswith(READERS)
            ]
        elif isinstance(node, ast.ImportFrom):
            module = _module_of(node, package)
            names = {a.name for a in node.names}
            if module.split(".")[0] in FILE_MODULES:
                found.append(f"{node.lineno}: imports from {module}")
            elif (
                module.startswith(READERS)
                and module != TABLE_CONTRACTS
                and not names <= PROFILE_MODEL.get(module, set())
            ):
                found.append(f"{node.lineno}: imports {', '.join(sorted(names))} from {module}")
    return found


@pytest.mark.parametrize("path", sorted(CHECKS.glob("*.py")), ids=lambda p: p.name)
def test_check_module_reads_no_file(path):
    assert impurities(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "line",
    [
        "text = open(path).read()",
        "data = path.read_text()",
        "raw = path.read_bytes()",
        "files = sorted(rank.path.glob('PROF_*/device_*/info.json.*'))",
        "files = list(rank.path.iterdir())",
        "for folder, dirs, files in os.walk(rank.path): pass",
        "data = json.load(fh)",
        "con = sqlite3.connect(db)",
        "frame = pd.read_csv(path)",
        "frame = load_table('kernels', ctx.rank)",
        "env = load_metadata(ctx.rank).env",
        "import sqlite3",
        "from pathlib import Path",
        "from ..formats.ascend_common.metadata import load_metadata",
        "from ..formats.ascend_common.folder import read_small_json",
        "from ..formats import load_table",
        "from advisor.formats.tables import load_table",
        "import advisor.formats.ascend_text.kernels",
    ],
)
def test_the_scan_catches_each_kind_of_read(line):
    assert impurities(line)


def test_the_scan_lets_checks_use_their_tables_and_the_model():
    source = (
        "from ..model import ProfileSet, RankInfo\n"
        "from ..formats.schema import PMU_RATIOS\n"
        "from .knowledge import knowledge\n"
        "rules = knowledge('environment')\n"
        "kernels = ctx.tables['kernels']\n"
        "env = ctx.tables[0].get('environment')\n"
    )
    assert impurities(source) == []


def test_checks_make_findings_through_one_helper():
    """`common.finding` fills the check id and dimension from the running check: no check repeats them."""
    direct = [
        f"{path.name}:{node.lineno}"
        for path in sorted(CHECKS.glob("*.py"))
        if path.name != "common.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Finding"
    ]
    assert direct == []


def test_a_finding_takes_id_and_dimension_from_the_running_check():
    @check("schedule.helper_probe", "schedule")
    def probe(ctx: object) -> list[Finding]:
        measured = finding(title="t", lines=["a", "b"], gain=Gain(600.0, 10_000.0), ranks=[3], step=7)
        unmeasured = finding(title="u", lines=["c"], priority="high")
        return [measured, unmeasured]

    try:
        measured, unmeasured = probe(None)
    finally:
        unregister("schedule.helper_probe")
    assert (measured.check, measured.dimension) == ("schedule.helper_probe", "schedule")
    assert (measured.description, measured.ranks, measured.step) == ("a\nb", [3], 7)
    assert (measured.priority, measured.estimated_gain_us, measured.share_of_step) == ("high", 600.0, 0.06)
    assert (unmeasured.ranks, unmeasured.step, unmeasured.suggestions, unmeasured.evidence) == (
        [],
        None,
        [],
        [],
    )
    # No gain estimates it: the check's own severity, at most medium.
    assert (unmeasured.priority, unmeasured.estimated_gain_us, unmeasured.gain_basis) == (
        "medium",
        None,
        None,
    )
    with pytest.raises(RuntimeError, match="running check"):
        finding(title="t", lines=[])
