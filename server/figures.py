"""A submission's pictures as inline SVG, drawn on the server: the ROC curve with the operating point at 0.5, the
confusion matrix in a clinician's words, and the training curves per epoch.

Every picture is ``role="img"`` with a ``<title>`` and a ``<desc>`` that say its numbers in words; every text in
it is escaped (metric names come from the participant's code). Colours and dashes are SVG presentation
attributes, which the strict CSP allows (it forbids ``style`` attributes). ``None`` where there is nothing to draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from server.curves import COLOURS, axis_span, epoch_ticks, panels, value_ticks

MAX_ROC_POINTS = 400  # an SVG path stays small whatever the scorer sends
INK, MUTED, GRID = "#1d2330", "#5b6577", "#e3ddd7"
CAUGHT, MISSED, BIOPSY, LEFT_ALONE = "#1b7a3a", "#b3261e", "#b8620b", "#3b6fd8"


@dataclass(frozen=True)
class Plot:
    """A plotting box inside the SVG's view box, and the data ranges it maps."""

    left: float
    top: float
    right: float
    bottom: float
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)

    def x(self, value: float) -> float:
        low, high = self.x_range
        return round(self.left + (value - low) / (high - low) * (self.right - self.left), 1)

    def y(self, value: float) -> float:
        low, high = self.y_range
        return round(self.bottom - (value - low) / (high - low) * (self.bottom - self.top), 1)


def number(value: object) -> float | None:
    """A finite float, or None for anything else (text, NaN, booleans, missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def svg(key: str, width: int, height: int, title: str, desc: str, body: list[str], font_size: int = 12) -> Markup:
    """The ``<svg>`` element: scales to its container's width, labelled by its title and description."""
    ident = escape(key)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="figure-svg" id="{ident}" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc" font-family="system-ui, sans-serif" '
        f'font-size="{font_size}">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text in it went through escape()


def text(x: float, y: float, words: str, anchor: str = "middle", **attributes: object) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attributes.items())
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}"{extra}>{escape(words)}</text>'


def line(x1: float, y1: float, x2: float, y2: float, colour: str = INK, **attributes: object) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attributes.items())
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}"{extra}/>'


def roc_points(figure: dict) -> list[tuple[float, float]]:
    """The curve's (false positive rate, true positive rate) points, clean, sorted, from (0, 0) to (1, 1)."""
    points = set()
    for point in (figure.get("roc") or []) if isinstance(figure, dict) else []:
        if isinstance(point, list | tuple) and len(point) == 2:
            fpr, tpr = number(point[0]), number(point[1])
            if fpr is not None and tpr is not None:
                points.add((min(max(fpr, 0.0), 1.0), min(max(tpr, 0.0), 1.0)))
    if not points:
        return []
    ordered = sorted(points | {(0.0, 0.0), (1.0, 1.0)})
    if len(ordered) > MAX_ROC_POINTS:
        step = math.ceil(len(ordered) / MAX_ROC_POINTS)
        ordered = ordered[::step] + ([ordered[-1]] if (len(ordered) - 1) % step else [])
    return ordered


def operating_point(figure: dict) -> tuple[float, float] | None:
    point = figure.get("operating_point") if isinstance(figure, dict) else None
    if not isinstance(point, list | tuple) or len(point) != 2:
        return None
    fpr, tpr = number(point[0]), number(point[1])
    return None if fpr is None or tpr is None else (fpr, tpr)


def roc_svg(figure: dict, key: str, partition: str = "public", auc: object = None) -> Markup | None:
    """The ROC curve of one partition, the chance diagonal, and the operating point at the threshold 0.5."""
    points = roc_points(figure)
    if not points:
        return None
    plot = Plot(left=58, top=12, right=338, bottom=292)
    body = _roc_axes(plot)
    path = " ".join(f"{plot.x(fpr)},{plot.y(tpr)}" for fpr, tpr in points)
    area = f"{plot.x(0)},{plot.y(0)} {path} {plot.x(1)},{plot.y(0)}"
    body.append(f'<polygon points="{area}" fill="#8a3b12" fill-opacity="0.08" stroke="none"/>')
    body.append(f'<polyline points="{path}" fill="none" stroke="#8a3b12" stroke-width="2.5" class="roc-curve"/>')
    auc_value = number(auc)
    summary = f"ROC AUC {auc_value:.3f}. " if auc_value is not None else ""
    here = operating_point(figure)
    if here is not None:
        x, y = plot.x(here[0]), plot.y(here[1])
        body.append(f'<circle cx="{x}" cy="{y}" r="6" fill="#fff" stroke="{INK}" stroke-width="2.5" class="op"/>')
        body.append(text(min(x + 10, 250), max(y + 18, 30), "threshold 0.5", anchor="start", font_weight="600"))
        summary += (
            f"At the threshold 0.5 the model catches {here[1]:.0%} of melanomas (sensitivity) and sends "
            f"{here[0]:.0%} of benign lesions to biopsy (specificity {1 - here[0]:.2f})."
        )
    if auc_value is not None:
        body.append(text(plot.right - 8, plot.bottom - 10, f"AUC {auc_value:.3f}", anchor="end", font_size="15"))
    title = f"ROC curve of the {partition} test images"
    desc = f"{summary} The curve has {len(points)} points; the diagonal is a model that guesses."
    return svg(key, 350, 340, title, desc.strip(), body)


def _roc_axes(plot: Plot) -> list[str]:
    body = []
    for step in range(6):
        value = step / 5
        x, y = plot.x(value), plot.y(value)
        body.append(line(x, plot.top, x, plot.bottom, GRID))
        body.append(line(plot.left, y, plot.right, y, GRID))
        body.append(text(x, plot.bottom + 15, f"{value:.1f}", fill=MUTED))
        body.append(text(plot.left - 6, y + 4, f"{value:.1f}", anchor="end", fill=MUTED))
    chance = line(plot.x(0), plot.y(0), plot.x(1), plot.y(1), MUTED, stroke_dasharray="4 4")
    body += [
        chance,
        f'<rect x="{plot.left}" y="{plot.top}" width="{plot.right - plot.left}" '
        f'height="{plot.bottom - plot.top}" fill="none" stroke="{INK}"/>',
    ]
    middle_x, middle_y = (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2
    body.append(text(middle_x, plot.bottom + 34, "benign lesions sent to biopsy (1 − specificity)"))
    body.append(text(16, middle_y, "melanomas caught (sensitivity)", transform=f"rotate(-90 16 {middle_y})"))
    return body


@dataclass(frozen=True)
class Confusion:
    tp: int
    fn: int
    fp: int
    tn: int

    @property
    def melanomas(self) -> int:
        return self.tp + self.fn

    @property
    def benign(self) -> int:
        return self.fp + self.tn

    def in_words(self) -> str:
        """The four counts as a clinician says them (also the picture's text alternative)."""
        return (
            f"Of {self.melanomas} melanomas, the model caught {self.tp} and missed {self.fn}. "
            f"Of {self.benign} benign lesions, it sent {self.fp} to biopsy and correctly left {self.tn} alone."
        )


def confusion(figure: dict) -> Confusion | None:
    counts = figure.get("confusion") if isinstance(figure, dict) else None
    if not isinstance(counts, dict):
        return None
    values = {name: number(counts.get(name)) for name in ("tp", "fn", "fp", "tn")}
    if any(value is None or value < 0 for value in values.values()):
        return None
    return Confusion(**{name: int(value) for name, value in values.items()})


def confusion_svg(figure: dict, key: str, partition: str = "public") -> Markup | None:
    """Two rows (melanoma, benign) by two columns (sent to biopsy, left alone), each cell its count in words."""
    counts = confusion(figure)
    if counts is None:
        return None
    left, top, cell_w, cell_h = 96, 40, 170, 104
    body = [
        text(left + cell_w / 2, 16, "model says", fill=MUTED),
        text(left + cell_w / 2, 32, "melanoma: biopsy", font_weight="600"),
        text(left + cell_w * 1.5, 16, "model says", fill=MUTED),
        text(left + cell_w * 1.5, 32, "benign: leave alone", font_weight="600"),
    ]
    for row, (first, second) in enumerate((("lesion is", "melanoma"), ("lesion is", "benign"))):
        middle = top + cell_h * (row + 0.5)
        body += [text(left - 10, middle - 4, first, "end", fill=MUTED), text(left - 10, middle + 12, second, "end")]
    cells = [
        (0, 0, counts.tp, counts.melanomas, ("melanomas", "caught"), CAUGHT),
        (1, 0, counts.fn, counts.melanomas, ("melanomas", "missed"), MISSED),
        (0, 1, counts.fp, counts.benign, ("benign lesions", "sent to biopsy"), BIOPSY),
        (1, 1, counts.tn, counts.benign, ("benign lesions", "correctly left alone"), LEFT_ALONE),
    ]
    for column, row, count, total, words, colour in cells:
        x, y = left + column * cell_w, top + row * cell_h
        share = f"{count / total:.0%} of {total}" if total else "none"
        body.append(
            f'<rect x="{x + 3}" y="{y + 3}" width="{cell_w - 6}" height="{cell_h - 6}" rx="6" fill="{colour}" '
            f'fill-opacity="0.12" stroke="{colour}" stroke-width="2" class="cell"/>'
        )
        middle = x + cell_w / 2
        body += [
            text(middle, y + 36, f"{count}", font_size="26", font_weight="700", fill=colour),
            text(middle, y + 56, words[0]),
            text(middle, y + 71, words[1]),
            text(middle, y + 89, share, fill=MUTED, font_size="11"),
        ]
    title = f"Confusion matrix at the threshold 0.5, {partition} test images"
    return svg(key, left + 2 * cell_w + 6, top + 2 * cell_h + 6, title, counts.in_words(), body)


def curve_svgs(history: object, key: str = "curves") -> list[Markup]:
    """One picture per panel of server/curves.py (loss; the monitored metric): training solid, validation dashed."""
    return [_panel_svg(panel, f"{key}-{index}") for index, panel in enumerate(panels(history))]


def _panel_svg(panel, key: str) -> Markup:
    points = [point for series in panel.lines.values() for point in series]
    x_range = axis_span([x for x, _ in points], absolute=0.5)
    y_range = axis_span([y for _, y in points], fraction=0.05)
    plot = Plot(58, 30, 470, 196, x_range, y_range)
    body = [
        f'<rect x="{plot.left}" y="{plot.top}" width="{plot.right - plot.left}" height="{plot.bottom - plot.top}" '
        f'fill="none" stroke="{INK}"/>',
        text(plot.left, 18, panel.title, anchor="start", font_weight="600", font_size="16"),
        text((plot.left + plot.right) / 2, plot.bottom + 36, "epoch"),
    ]
    for value in value_ticks(*y_range):
        y = plot.y(value)
        body += [line(plot.left, y, plot.right, y, GRID), text(plot.left - 6, y + 4, f"{value:.3g}", "end", fill=MUTED)]
    for epoch in epoch_ticks(*x_range):
        body.append(text(plot.x(epoch), plot.bottom + 18, str(epoch), fill=MUTED))
    bases = sorted({name.removeprefix("val_") for name in panel.lines})
    legend_x, legend_y, said = plot.left, plot.bottom + 60, []
    for name, series in sorted(panel.lines.items(), key=lambda item: item[0].startswith("val_")):
        colour = COLOURS[bases.index(name.removeprefix("val_")) % len(COLOURS)]
        dash = {"stroke_dasharray": "6 4"} if name.startswith("val_") else {}
        dash_attribute = ' stroke-dasharray="6 4"' if dash else ""
        placed = " ".join(f"{plot.x(x)},{plot.y(y)}" for x, y in sorted(series))
        body.append(
            f'<polyline points="{placed}" fill="none" stroke="{colour}" stroke-width="2"{dash_attribute} '
            'class="series"/>'
        )
        body += [f'<circle cx="{plot.x(x)}" cy="{plot.y(y)}" r="3" fill="{colour}"/>' for x, y in series]
        label = ("validation " if name.startswith("val_") else "training ") + name.removeprefix("val_")[:24]
        width = 30 + 7.8 * len(label)
        if legend_x + width > plot.right + 8:
            legend_x, legend_y = plot.left, legend_y + 20
        body += [
            line(legend_x, legend_y - 4, legend_x + 20, legend_y - 4, colour, stroke_width="2.5", **dash),
            text(legend_x + 25, legend_y, label, anchor="start"),
        ]
        legend_x += width + 12
        last_epoch, last_value = sorted(series)[-1]
        said.append(f"{label} {last_value:.4g} at epoch {last_epoch}")
    epochs = len({x for x, _ in points})
    desc = f"{panel.title} per epoch over {epochs} epoch{'s' if epochs != 1 else ''}: " + "; ".join(said) + "."
    return svg(key, 480, int(legend_y) + 10, f"Training curves: {panel.title}", desc, body, font_size=14)


def submission_pictures(metrics: dict, private: bool = False) -> list[dict]:
    """Per partition the viewer may see (the private one only with ``private``): the ROC picture, the confusion
    picture and the counts in words. Metrics without ``figures`` (older submissions) give no pictures."""
    figures = metrics.get("figures") if isinstance(metrics.get("figures"), dict) else {}
    pictures = []
    for partition in ("public", "private") if private else ("public",):
        figure = figures.get(partition)
        if not isinstance(figure, dict):
            continue
        auc = (metrics.get(partition) or {}).get("roc_auc") if isinstance(metrics.get(partition), dict) else None
        counts = confusion(figure)
        picture = {
            "partition": partition,
            "roc": roc_svg(figure, f"roc-{partition}", partition, auc),
            "confusion": confusion_svg(figure, f"confusion-{partition}", partition),
            "words": counts.in_words() if counts else None,
        }
        if picture["roc"] or picture["confusion"]:
            pictures.append(picture)
    return pictures
