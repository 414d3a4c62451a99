"""Write src/options.ts, the panel's TypeScript types of the options contract, from advisor/options.py.

    python scripts/options_ts.py           # rewrite src/options.ts
    python scripts/options_ts.py --check   # exit 1 if src/options.ts is not what the model gives

The interfaces are derived from the model's fields and from what `options_schema` serves for them, so
a field added to `AnalysisOptions` or `JobParameters` reaches the panel's types by running this script
(tests/test_options.py fails while the committed file is stale). The output is prettier-clean.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advisor.options import AnalysisOptions, JobParameters, Model, options_schema, specs  # noqa: E402

TARGET = ROOT / "src" / "options.ts"
# The interface of each kind of option's schema entry (GET api/options).
KIND_INTERFACES = {
    "choice": "IChoiceOption",
    "multi": "IMultiChoiceOption",
    "range": "IRangeOption",
    "count": "ICountOption",
    "flag": "IFlagOption",
    "text": "ITextOption",
}
KIND_DOCS = {
    "choice": "A single-choice option.",
    "multi": "A multiple-choice option.",
    "range": "An integer option with a range.",
    "count": "An integer option with a range that may be left unset (null).",
    "flag": "An on/off option.",
    "text": "A free-text option.",
}
# The model classes: their value interface, their schema interface, and what they are.
MODELS: tuple[tuple[type[Model], str, str, str], ...] = (
    (AnalysisOptions, "IAnalysisOptions", "IOptionsSchema", "The analysis options (REST names)."),
    (
        JobParameters,
        "IJobParameters",
        "IJobSchema",
        "The job parameters: where the reports go, their language and the training log read beside the "
        "profile, top-level fields of a task.",
    ),
)


def ts_type(value: Any) -> str:
    """The TypeScript type of a JSON value of the schema (null: an unset count, which is a number)."""
    if value is None:
        return "number | null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "string[]"
    raise TypeError(f"no TypeScript type for {value!r}")


def field_type(model: type[Model], name: str) -> str:
    hint = get_type_hints(model)[name]
    return {
        str: "string",
        int: "number",
        int | None: "number | null",
        bool: "boolean",
        tuple[str, ...]: "string[]",
    }[hint]


def doc(text: str, indent: str = "") -> list[str]:
    return [f"{indent}/**", f"{indent} * {text}", f"{indent} */"]


def render() -> str:
    lines = [
        "/**",
        " * The options contract, generated from `advisor/options.py` by",
        " * `python scripts/options_ts.py`: do not edit (tests/test_options.py fails when",
        " * it is stale).",
        " */",
    ]
    entries: dict[str, dict[str, Any]] = {}
    for model, *_ in MODELS:
        for name, spec in specs(model).items():
            entries.setdefault(spec.kind, options_schema(model)[name])
    for kind, interface in KIND_INTERFACES.items():
        if kind not in entries:
            continue
        lines += ["", *doc(KIND_DOCS[kind]), f"export interface {interface} {{"]
        lines += [f"  {key}: {ts_type(value)};" for key, value in entries[kind].items()]
        lines.append("}")
    for model, values, schema, what in MODELS:
        lines += ["", *doc(what), f"export interface {values} {{"]
        lines += [f"  {f.name}: {field_type(model, f.name)};" for f in fields(model)]
        lines += [
            "}",
            "",
            *doc(f"The schema of `{values}` served by `GET api/options`."),
            f"export interface {schema} {{",
        ]
        lines += [f"  {name}: {KIND_INTERFACES[spec.kind]};" for name, spec in specs(model).items()]
        lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/options_ts.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
