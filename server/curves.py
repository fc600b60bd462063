"""Per-epoch training curves as a PNG picture, drawn with Pillow: loss on the left, AUC (or other metrics) right.

A submission's ``history`` is a list of per-epoch records, either flat (``{"epoch": 1, "loss": .., "val_auc": ..}``)
or as the harness writes them (``{"epoch": 1, "seconds": .., "metrics": {"loss": .., ...}}``). Odd records are
skipped, not fatal: missing keys, NaN, infinities, text, an empty list.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1000, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 40, 60
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
MAX_LINES = len(COLOURS)  # per panel
NOT_METRICS = {"epoch", "seconds"}


@dataclass(frozen=True)
class Panel:
    title: str
    lines: dict[str, list[tuple[int, float]]]  # metric name -> (epoch, value) points


def epoch_metrics(history: object) -> list[tuple[int, dict[str, float]]]:
    """(epoch, {metric: finite value}) for every usable record, in order; anything else is dropped."""
    rows = []
    for position, record in enumerate(history if isinstance(history, list) else [], start=1):
        if not isinstance(record, dict):
            continue
        values = record.get("metrics") if isinstance(record.get("metrics"), dict) else record
        epoch = record.get("epoch")
        epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else position
        finite = {
            str(key): float(value)
            for key, value in values.items()
            if key not in NOT_METRICS
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        }
        rows.append((epoch, finite))
    return rows


def panels(history: object) -> list[Panel]:
    """The loss panel and the AUC panel (other metrics where there is no AUC); empty panels are left out."""
    loss: dict[str, list] = {}
    other: dict[str, list] = {}
    for epoch, values in epoch_metrics(history):
        for key, value in values.items():
            (loss if "loss" in key else other).setdefault(key, []).append((epoch, value))
    if any("auc" in key for key in other):
        other = {key: points for key, points in other.items() if "auc" in key}
    title = "ROC AUC" if any("auc" in key for key in other) else "Metrics"
    chosen = [Panel("Loss", loss), Panel(title, other)]
    return [Panel(panel.title, dict(sorted(panel.lines.items())[:MAX_LINES])) for panel in chosen if panel.lines]


def draw_curves(history: object, title: str = "") -> bytes | None:
    """The PNG bytes of the curves, or None where the history has no number to draw."""
    chosen = panels(history)
    if not chosen:
        return None
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(15), _font(12)
    if title:
        draw.text((10, 8), title[:120], fill="black", font=font)
    width = WIDTH // len(chosen)
    for index, panel in enumerate(chosen):
        _draw_panel(draw, panel, (index * width, 0, (index + 1) * width, HEIGHT), font, small)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _draw_panel(draw: ImageDraw.ImageDraw, panel: Panel, box: tuple[int, int, int, int], font, small) -> None:
    """Axes with ticks and labels, one line (with dots) per metric, and a legend in the top right corner."""
    left, top = box[0] + MARGIN_LEFT, box[1] + MARGIN_TOP
    right, bottom = box[2] - MARGIN_RIGHT, box[3] - MARGIN_BOTTOM
    points = [point for line in panel.lines.values() for point in line]
    x_low, x_high = axis_span([x for x, _ in points], absolute=0.5)
    y_low, y_high = axis_span([y for _, y in points], fraction=0.05)

    def place(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_low) / (x_high - x_low) * (right - left),
            bottom - (y - y_low) / (y_high - y_low) * (bottom - top),
        )

    draw.rectangle((left, top, right, bottom), outline="black")
    for value in value_ticks(y_low, y_high):
        _, y = place(x_low, value)
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((left - 6, y), f"{value:.3g}", fill="black", font=small, anchor="rm")
    for epoch in epoch_ticks(x_low, x_high):
        x, _ = place(epoch, y_low)
        draw.line((x, bottom, x, bottom + 4), fill="black")
        draw.text((x, bottom + 6), str(epoch), fill="black", font=small, anchor="mt")
    draw.text(((left + right) / 2, bottom + 26), "epoch", fill="black", font=font, anchor="mt")
    draw.text(((left + right) / 2, top - 6), panel.title, fill="black", font=font, anchor="mb")
    for colour, line in zip(COLOURS, panel.lines.values(), strict=False):
        placed = [place(x, y) for x, y in sorted(line)]
        if len(placed) > 1:
            draw.line(placed, fill=colour, width=2)
        for x, y in placed:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    for row, (colour, name) in enumerate(zip(COLOURS, panel.lines, strict=False)):
        y = top + 10 + row * 18
        draw.line((right - 150, y, right - 126, y), fill=colour, width=3)
        draw.text((right - 120, y), name[:20], fill="black", font=small, anchor="lm")


def axis_span(values: list[float], fraction: float = 0.0, absolute: float = 0.0) -> tuple[float, float]:
    """The axis range around ``values`` with some room; never empty (one epoch or a flat line still gets one)."""
    low, high = min(values), max(values)
    if high - low < 1e-12:
        spread = max(abs(low) * 0.1, absolute, 0.05)
        return low - spread, high + spread
    extra = (high - low) * fraction + absolute
    return low - extra, high + extra


def value_ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * step / (count - 1) for step in range(count)]


def epoch_ticks(low: float, high: float) -> list[int]:
    first, last = math.ceil(low), math.floor(high)
    step = max(1, math.ceil((last - first + 1) / 10))
    return list(range(first, last + 1, step))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()
