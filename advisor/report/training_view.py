"""The Training section's figures, shared by the HTML report (a table and plotly charts) and the XLSX
workbook (the Training sheets): what the log is, throughput over the middle window, loss, and where a
figure could not be computed, why."""

from __future__ import annotations

from typing import Any

from .messages import Messages
from .model import Report

# The series of the JSON `training` object the series sheet lists, in order.
SERIES_COLUMNS = (
    "step",
    "loss",
    "loss_smooth",
    "tokens_per_s_per_device",
    "samples_per_s",
    "step_time_s",
    "lr",
    "grad_norm",
)


def _figure(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def training_rows(report: Report, m: Messages) -> list[list[str]]:
    """(label, value) rows of the Training section; empty without a training log."""
    training = report.training
    if training is None:
        return []
    throughput, loss = training["throughput"], training["loss"]
    devices = training["devices"]
    source = training["devices_source"]
    rows = [
        [m.t("training.section.log"), training["description"]],
        [m.t("training.section.path"), training["path"]],
        [
            m.t("training.section.devices"),
            m.t(f"training.section.source.{source}", value=devices)
            if devices
            else m.t("training.section.unknown"),
        ],
    ]
    if training.get("seq_length"):
        rows.append(
            [
                m.t("training.section.seq_length"),
                m.t(f"training.section.source.{training['seq_length_source']}", value=training["seq_length"]),
            ]
        )
    window = throughput.get("window")
    tokens = throughput.get("tokens_per_s_per_device")
    rows.append(
        [
            m.t("training.section.tokens_per_s_per_device"),
            m.t("training.section.over_window", value=tokens, first=window[0], last=window[1])
            if tokens is not None and window
            else throughput.get("missing") or m.t("training.section.unknown"),
        ]
    )
    if throughput.get("samples_per_s") is not None:
        rows.append([m.t("training.section.samples_per_s"), _figure(throughput["samples_per_s"], ",.2f")])
    if throughput.get("step_time_s") is not None:
        rows.append(
            [
                m.t("training.section.step_time"),
                m.t("training.section.seconds", value=throughput["step_time_s"]),
            ]
        )
    if loss.get("first") is not None:
        rows.append(
            [
                m.t("training.section.loss"),
                m.t("training.section.loss_value", first=loss["first"], last=loss["last"], min=loss["min"]),
            ]
        )
    rows += [[m.t("training.section.note"), note] for note in training.get("notes", [])]
    return rows


def series_rows(report: Report) -> tuple[list[str], list[list[Any]]]:
    """The series of the training object as a table (the columns the log has)."""
    series = (report.training or {}).get("series") or {}
    columns = [name for name in SERIES_COLUMNS if name in series]
    return columns, [list(values) for values in zip(*(series[name] for name in columns), strict=True)]
