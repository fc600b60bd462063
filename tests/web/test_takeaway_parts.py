"""The takeaway bundle's pieces without HTTP: curves drawn from odd histories without a crash, safe zip entry
names, safe slugs of display names (issue 12, point 7)."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from server.curves import draw_curves, epoch_metrics, panels
from server.takeaway import safe_entry, safe_slug

HISTORY = [
    {"epoch": epoch, "metrics": {"loss": 1 / epoch, "val_loss": 1.1 / epoch, "auc": 0.6, "val_auc": 0.7}}
    for epoch in (1, 2, 3)
]


@pytest.mark.parametrize(
    "history",
    [
        [],
        None,
        "not a list",
        [None, 3, "x"],
        [{}],
        [{"epoch": 1, "loss": 0.5}],
        [{"epoch": 1, "loss": math.nan, "auc": math.inf}],
        [{"epoch": 1, "loss": math.nan}, {"epoch": 2, "loss": 0.4, "val_auc": -math.inf}, {"epoch": 3, "loss": 0.3}],
        [{"loss": 0.5}, {"val_loss": 0.6}],  # no epoch numbers, each with a different key
        [{"epoch": True, "metrics": {"accuracy": 0.7, "note": "text"}}],
        [{"epoch": 1, "metrics": "broken"}],
        [{"epoch": 1, "loss": 5.0}, {"epoch": 1, "loss": 5.0}],  # a flat line on one epoch
    ],
)
def test_odd_histories_draw_or_return_none_without_crashing(history):
    picture = draw_curves(history, "odd")
    if picture is None:
        assert not any(values for _, values in epoch_metrics(history))
    else:
        assert Image.open(io.BytesIO(picture)).format == "PNG"


def test_the_curves_split_loss_from_auc():
    titles = {panel.title: sorted(panel.lines) for panel in panels(HISTORY)}
    assert titles == {"Loss": ["loss", "val_loss"], "ROC AUC": ["auc", "val_auc"]}
    assert [panel.title for panel in panels([{"accuracy": 0.5}])] == ["Metrics"]


@pytest.mark.parametrize("name", ["/etc/passwd", "a/../../b", "a\\b", "", "a//b", "C:/x", "./a"])
def test_unsafe_entry_names_are_refused(name):
    with pytest.raises(ValueError, match="unsafe"):
        safe_entry(name)


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Ada Lovelace", "ada-lovelace"), ("Zoë ../..", "zoe"), ("🙂", "participant"), ("A" * 99, "a" * 40)],
)
def test_display_names_become_safe_slugs(name, slug):
    assert safe_slug(name) == slug
