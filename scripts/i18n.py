"""The panel's translations: extract the strings of src/, keep the catalogues, compile what ships.

JupyterLab finds an extension's translations through the `jupyterlab.locale` entry point (pyproject:
`jupyterlab_performance_advisor = "advisor"`): jupyterlab_server reads
`advisor/locale/<locale>/LC_MESSAGES/jupyterlab_performance_advisor.json` and the frontend's
`translator.load('jupyterlab_performance_advisor')` gets it when the user picks that language (a
language pack for it must be installed, as for JupyterLab's own strings).

    python scripts/i18n.py update    # add the new strings of src/ to each .po (empty), drop unused ones
    python scripts/i18n.py compile   # .po -> the .json that ships (run after translating)
    python scripts/i18n.py check     # exit 1 if a string lacks a translation or a .json is stale

The .po files are the source translators edit; the .json next to them is generated and committed
(tests/test_i18n.py keeps them in sync). Strings are extracted with babel's JavaScript extractor,
the one jupyterlab-translate uses, from the `trans.__`, `_n`, `_p` and `_np` calls.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
DOMAIN = "jupyterlab_performance_advisor"
LOCALE_DIR = ROOT / "advisor" / "locale"
# gettext keywords of @jupyterlab/translation's TranslationBundle, with babel's argument specs.
KEYWORDS = {"__": None, "_n": (1, 2), "_p": ((1, "c"), 2), "_np": ((1, "c"), 2, 3)}
CALL = re.compile(r"\.(?:__|_n|_p|_np)\(")
# The languages shipped, with their gettext plural rule.
LANGUAGES = {"zh_CN": "nplurals=1; plural=0;"}
PLACEHOLDER = re.compile(r"%\d+")


@dataclass(frozen=True)
class Message:
    msgid: str
    plural: str | None
    context: str | None
    where: str  # file:line of its first use


def _sources(src: Path) -> Iterator[Path]:
    for path in sorted(src.rglob("*")):
        if path.suffix in (".ts", ".tsx") and "__tests__" not in path.parts:
            yield path


def extract_messages(src: Path = SRC) -> tuple[list[Message], list[str]]:
    """(every translatable string of `src`, once each, in order of first use; the calls that are not
    a literal string, which no catalogue can translate)."""
    found: dict[tuple[str, str | None], Message] = {}
    problems: list[str] = []
    options = {"jsx": "true", "template_string": "true", "parse_template_string": "false"}
    for path in _sources(src):
        text = path.read_bytes()
        rel = path.relative_to(src.parent).as_posix()
        extracted = list(extract("javascript", io.BytesIO(text), keywords=KEYWORDS, options=options))
        # babel skips a call whose message is not a literal: count the calls to catch those.
        calls = len(CALL.findall(text.decode("utf-8")))
        if calls != len(extracted):
            problems.append(f"{rel}: {calls} translation calls but {len(extracted)} literal messages")
        for line, message, _comments, context in extracted:
            msgid, plural = (message[0], message[1]) if isinstance(message, tuple) else (message, None)
            found.setdefault((msgid, context), Message(msgid, plural, context, f"{rel}:{line}"))
    return list(found.values()), problems


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def json_path(locale: str) -> Path:
    return po_path(locale).with_suffix(".json")


def load_po(locale: str) -> Catalog:
    with open(po_path(locale), "rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


def to_json(catalog: Catalog, locale: str) -> dict:
    """The Jed-style data JupyterLab's translator loads: `{"": header, msgid: [translation, ...]}`,
    with `context\\u0004msgid` keys for a context."""
    data: dict[str, object] = {
        "": {
            "domain": DOMAIN,
            "language": locale.replace("_", "-"),
            "plural_forms": LANGUAGES[locale],
            # No "version": jupyterlab_server would merge it with a language pack's entry for this
            # domain by comparing versions, and a language pack's own is not a version number.
        }
    }
    for message in sorted(catalog, key=lambda m: (m.context or "", str(m.id))):
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            key = message.id[0]
            # JupyterLab's Gettext takes an entry as plural only with more than one form: with
            # nplurals=1 the one form is followed by an empty one, as the language packs do.
            forms = list(message.string) if isinstance(message.string, tuple) else [message.string]
            translations = forms if len(forms) > 1 else [*forms, ""]
        else:
            key = message.id
            translations = [message.string]
        data[f"{message.context}\u0004{key}" if message.context else key] = translations
    return data


def compiled(locale: str) -> str:
    return json.dumps(to_json(load_po(locale), locale), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def untranslated(catalog: Catalog, messages: list[Message]) -> list[str]:
    """The messages of src/ that `catalog` lacks, leaves empty or translates with other placeholders."""
    missing = []
    for message in messages:
        key = (message.msgid, message.plural) if message.plural else message.msgid
        entry = catalog.get(key, context=message.context)
        strings = entry.string if entry is not None else None
        forms = list(strings) if isinstance(strings, tuple) else [strings]
        if entry is None or not all(forms):
            missing.append(f"{message.where}: {message.msgid!r} has no translation")
        elif any(
            sorted(set(PLACEHOLDER.findall(form))) != sorted(set(PLACEHOLDER.findall(message.msgid)))
            for form in forms
        ):
            missing.append(f"{message.where}: {message.msgid!r}: the translation's placeholders differ")
    return missing


def unused(catalog: Catalog, messages: list[Message]) -> list[str]:
    used = {(m.msgid, m.context) for m in messages}
    return [
        str(m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and ((m.id if isinstance(m.id, str) else m.id[0]), m.context) not in used
    ]


def update() -> None:
    messages, problems = extract_messages()
    for problem in problems:
        print(problem, file=sys.stderr)
    for locale in LANGUAGES:
        path = po_path(locale)
        catalog = load_po(locale) if path.exists() else Catalog(locale=locale, domain=DOMAIN)
        fresh = Catalog(
            locale=locale,
            domain=DOMAIN,
            project="jupyterlab-performance-advisor",
            fuzzy=False,
            # Kept, so that an update with no new string leaves the file as it was.
            creation_date=catalog.creation_date,
            revision_date=catalog.revision_date,
        )
        for message in messages:
            key = (message.msgid, message.plural) if message.plural else message.msgid
            old = catalog.get(key, context=message.context)
            string = old.string if old is not None else ("", "") if message.plural else ""
            fresh.add(key, string, locations=[], context=message.context)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        write_po(buffer, fresh, width=100, omit_header=False, sort_output=False)
        path.write_bytes(buffer.getvalue())
        print(f"{path.relative_to(ROOT)}: {len(messages)} messages, {len(unused(catalog, messages))} dropped")


def compile_all() -> None:
    for locale in LANGUAGES:
        json_path(locale).write_text(compiled(locale), encoding="utf-8")


def check() -> list[str]:
    messages, problems = extract_messages()
    for locale in LANGUAGES:
        catalog = load_po(locale)
        problems += [f"{locale}: {p}" for p in untranslated(catalog, messages)]
        problems += [f"{locale}: {msgid!r} is not used in src/" for msgid in unused(catalog, messages)]
        if json_path(locale).read_text(encoding="utf-8") != compiled(locale):
            problems.append(f"{json_path(locale).relative_to(ROOT)} is stale: run scripts/i18n.py compile")
    return problems


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
