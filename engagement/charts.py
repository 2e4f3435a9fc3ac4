"""Bar charts as plain SVG geometry, drawn by the templates (no JavaScript, no chart library): each chart has a
title for assistive technology and a table of the same numbers beside it. Sizes are in viewBox units; the SVG
scales to its container, so one drawing serves a phone and a desktop."""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH = 600
BAR_HEIGHT = 22
GAP = 8
LABEL_WIDTH = 0  # labels sit above each bar, so long headlines never squeeze the bars on a phone


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    css: str


@dataclass
class Row:
    label: str
    y: float
    bars: list[Bar] = field(default_factory=list)


@dataclass
class HorizontalChart:
    title: str
    rows: list[Row]
    height: float
    series: list[tuple[str, str]]  # (name, css class)


def horizontal(title: str, rows: list[tuple[str, list[int]]], series: list[tuple[str, str]]) -> HorizontalChart:
    """One row per label, one bar per series stacked end to end (e.g. human then machine)."""
    top = max((sum(values) for _label, values in rows), default=0) or 1
    out, y = [], 0.0
    for label, values in rows:
        row = Row(label=label, y=y + 16)
        x = 0.0
        for (_name, css), value in zip(series, values, strict=True):
            width = WIDTH * value / top
            row.bars.append(Bar(x, y + 22, width, BAR_HEIGHT, value, css))
            x += width
        out.append(row)
        y += 22 + BAR_HEIGHT + GAP
    return HorizontalChart(title, out, max(y, 1), series)


@dataclass
class Column:
    label: str
    x: float
    bars: list[Bar]
    show_label: bool


@dataclass
class ColumnChart:
    title: str
    columns: list[Column]
    height: float
    top: int
    series: list[tuple[str, str]]


def columns(
    title: str, data: list[tuple[str, list[int]]], series: list[tuple[str, str]], height: float = 200, every: int = 1
) -> ColumnChart:
    """Vertical stacked columns (a timeline, issues side by side); every `every`-th label is printed."""
    top = max((sum(values) for _label, values in data), default=0) or 1
    slot = WIDTH / max(len(data), 1)
    width = max(slot * 0.7, 1)
    out = []
    for index, (label, values) in enumerate(data):
        x = index * slot + (slot - width) / 2
        bottom, bars = height, []
        for (_name, css), value in zip(series, values, strict=True):
            h = height * value / top
            bottom -= h
            bars.append(Bar(x, bottom, width, h, value, css))
        out.append(Column(label, x + width / 2, bars, index % every == 0))
    return ColumnChart(title, out, height, top, series)
