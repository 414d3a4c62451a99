"""The panel's translations (scripts/i18n.py): every string of src/ has a Chinese translation, the
shipped JSON is the compiled .po, and JupyterLab's own loader finds it through the entry point."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from advisor.options import AnalysisOptions, JobParameters, specs

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("i18n", ROOT / "scripts" / "i18n.py")
assert spec and spec.loader
i18n = importlib.util.module_from_spec(spec)
sys.modules["i18n"] = i18n
spec.loader.exec_module(i18n)


def test_every_string_of_the_panel_is_translated_and_the_json_is_compiled():
    assert i18n.check() == []


def test_extraction_reads_every_kind_of_call_and_flags_non_literals(tmp_path):
    src = tmp_path / "src"
    (src / "widgets").mkdir(parents=True)
    (src / "widgets" / "a.tsx").write_text(
        "const x = <b title={trans.__('Hello %1', name)}>{trans.__(\"Two\")}</b>;\n"
        "trans._n('%1 rank', '%1 ranks', n);\n"
        "trans._p('menu', 'Open');\n"
        "trans._np('table', '%1 row', '%1 rows', n);\n"
        "trans.__(computed);\n"
    )
    (src / "__tests__").mkdir()
    (src / "__tests__" / "t.ts").write_text("trans.__('only in a test');\n")
    messages, problems = i18n.extract_messages(src)
    assert [(m.msgid, m.plural, m.context) for m in messages] == [
        ("Hello %1", None, None),
        ("Two", None, None),
        ("%1 rank", "%1 ranks", None),
        ("Open", None, "menu"),
        ("%1 row", "%1 rows", "table"),
    ]
    assert problems == ["src/widgets/a.tsx: 6 translation calls but 5 literal messages"]


def test_the_panel_strings_are_found():
    messages, problems = i18n.extract_messages()
    assert problems == []
    ids = {m.msgid for m in messages}
    # One from each file that shows text, so a file the extractor misses shows up.
    expected = {
        "Performance Advisor",  # index.ts
        "Open in New Browser Tab",  # widgets/reportViewer.ts
        "Advanced Settings",  # widgets/submitForm.tsx
        "Submitted",  # widgets/taskList.tsx
        "Enter the path of the profiling data",  # validation.ts
        "%1 min %2 s",  # format.ts
        "Analyzing",  # model.ts
    }
    assert expected <= ids


def test_plural_and_placeholder_rules(tmp_path):
    catalog = i18n.Catalog(locale="zh_CN", domain=i18n.DOMAIN)
    catalog.add(("%1 rank", "%1 ranks"), ("%1 个 rank",))
    catalog.add("Hello %1", "你好")
    data = i18n.to_json(catalog, "zh_CN")
    # JupyterLab's Gettext reads an entry as plural only when it has more than one form.
    assert data["%1 rank"] == ["%1 个 rank", ""]
    assert data[""]["language"] == "zh-CN" and data[""]["plural_forms"] == "nplurals=1; plural=0;"
    messages = [i18n.Message("Hello %1", None, None, "x.ts:1")]
    assert i18n.untranslated(catalog, messages) == [
        "x.ts:1: 'Hello %1': the translation's placeholders differ"
    ]


def test_jupyterlab_server_loads_the_catalogue_through_the_entry_point():
    from jupyterlab_server.translation_utils import get_installed_packages_locale

    data, message = get_installed_packages_locale("zh_CN")
    assert message.strip() == ""
    shipped = json.loads(i18n.json_path("zh_CN").read_text(encoding="utf-8"))
    assert data[i18n.DOMAIN] == shipped
    assert shipped["Submit"] == ["提交"]


def test_a_chinese_jupyterlab_gets_the_catalogue():
    """With the language pack a user installs to switch JupyterLab to Chinese (ui-tests install it)."""
    pytest.importorskip("jupyterlab_language_pack_zh_CN")
    from jupyterlab_server.translation_utils import get_language_pack

    data, _ = get_language_pack("zh_CN")
    assert data[i18n.DOMAIN]["Reports"] == ["报告"]
    assert data["jupyterlab"][""]["language"] == "zh-CN"


def test_every_analysis_option_has_a_control_with_its_label():
    # A new field of AnalysisOptions needs its control in the panel (docs/design.md, "Options"): its
    # label is then one of the panel's strings, and the catalogue check above makes it translated.
    ids = {m.msgid for m in i18n.extract_messages()[0]}
    labels = [spec.label for spec in specs(AnalysisOptions).values()] + [
        specs(JobParameters)["output_path"].label
    ]
    assert [label for label in labels if label not in ids] == []
