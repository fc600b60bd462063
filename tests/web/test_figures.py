"""The submission page's pictures (server/figures.py): valid SVG, the right points and labels, text alternatives,
escaped names, and no private figure for a participant (issue 14, point 2)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from factories import instructor_login, login_client, make_participant, make_submission

from server.figures import confusion_svg, curve_svgs, roc_svg, submission_pictures

SVG = "{http://www.w3.org/2000/svg}"
ROC = [[0.0, 0.0], [0.0, 0.4], [0.1, 0.55], [0.25, 0.8], [0.6, 0.95], [1.0, 1.0]]
PUBLIC_FIGURES = {"roc": ROC, "operating_point": [0.1, 0.55], "confusion": {"tp": 11, "fn": 9, "fp": 8, "tn": 72}}
PRIVATE_FIGURES = {"roc": [[0, 0], [0.3, 0.7], [1, 1]], "operating_point": [0.3, 0.7],
                   "confusion": {"tp": 17, "fn": 3, "fp": 24, "tn": 56}}  # fmt: skip
MEASURES = {"roc_auc": 0.8231, "pauc_80": 0.0912, "average_precision": 0.613, "sensitivity": 0.55,
            "specificity": 0.9, "balanced_accuracy": 0.725, "accuracy": 0.83, "count": 100}  # fmt: skip
PRIVATE = {**MEASURES, "roc_auc": 0.7777, "sensitivity": 0.85}
HISTORY = [
    {"epoch": epoch, "seconds": 2.5, "metrics": {"loss": 0.7 / epoch, "val_loss": 0.8 / epoch, "auc": 0.5 + epoch / 10,
                                                 "val_auc": 0.45 + epoch / 10}}
    for epoch in (1, 2, 3)
]  # fmt: skip


def parsed(markup) -> ET.Element:
    """The SVG as XML (it must be well-formed), after checking its text alternative is wired up."""
    root = ET.fromstring(str(markup))  # noqa: S314 - our own output, drawn from test data
    assert root.tag == SVG + "svg" and root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id and root.find(f"{SVG}title").text
    assert root.find(f"{SVG}desc").get("id") == desc_id and root.find(f"{SVG}desc").text
    assert "style=" not in str(markup)  # the CSP forbids style attributes; presentation attributes only
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(SVG + "text")]


def test_the_roc_curve_has_its_points_the_operating_point_and_says_them_in_words():
    root = parsed(roc_svg(PUBLIC_FIGURES, "roc-public", "public", 0.8231))
    curve = root.find(f"{SVG}polyline[@class='roc-curve']")
    points = [tuple(map(float, pair.split(","))) for pair in curve.get("points").split()]
    assert len(points) == len(ROC)
    assert points[0][0] < points[-1][0] and points[0][1] > points[-1][1]  # from (0, 0) bottom left to (1, 1)
    xs = [x for x, _ in points]
    assert xs == sorted(xs)
    marker = root.find(f"{SVG}circle[@class='op']")
    # the operating point sits on the curve's own vertex (0.1, 0.55)
    assert (float(marker.get("cx")), float(marker.get("cy"))) == points[2]
    words = " ".join(texts(root))
    assert "threshold 0.5" in words and "AUC 0.823" in words and "melanomas caught (sensitivity)" in words
    desc = root.find(f"{SVG}desc").text
    assert "ROC AUC 0.823" in desc and "55% of melanomas" in desc and "10% of benign lesions" in desc


def test_the_confusion_matrix_speaks_a_clinicians_words():
    root = parsed(confusion_svg(PUBLIC_FIGURES, "confusion-public"))
    words = " ".join(texts(root))
    for phrase in ("melanomas caught", "melanomas missed", "sent to biopsy", "correctly left alone"):
        assert phrase in words
    assert {"11", "9", "8", "72"} <= set(texts(root))
    assert root.find(f"{SVG}desc").text == (
        "Of 20 melanomas, the model caught 11 and missed 9. "
        "Of 80 benign lesions, it sent 8 to biopsy and correctly left 72 alone."
    )


def test_training_curves_draw_loss_and_the_monitored_metric_training_solid_validation_dashed():
    loss, auc = (parsed(picture) for picture in curve_svgs(HISTORY))
    assert "Loss" in loss.find(f"{SVG}title").text and "ROC AUC" in auc.find(f"{SVG}title").text
    lines = loss.findall(f"{SVG}polyline")
    assert len(lines) == 2 and [line.get("stroke-dasharray") for line in lines] == [None, "6 4"]
    assert all(len(line.get("points").split()) == 3 for line in lines)  # one point per epoch
    assert "training loss" in texts(loss) and "validation loss" in texts(loss)
    desc = auc.find(f"{SVG}desc").text
    assert "over 3 epochs" in desc and "validation auc 0.75 at epoch 3" in desc


def test_one_epoch_draws_and_hostile_names_are_escaped():
    history = [{"epoch": 1, "metrics": {"<script>alert(1)</script>": 0.5, "loss": float("nan"), "x": "text"}}]
    pictures = curve_svgs(history)
    assert len(pictures) == 1
    root = parsed(pictures[0])
    assert "<script>" not in str(pictures[0]) and any("<script>" in words for words in texts(root))


@pytest.mark.parametrize(
    "figure",
    [{}, {"roc": []}, {"roc": "x", "confusion": []}, {"roc": [[float("nan"), 1]], "confusion": {"tp": -1}}],
)
def test_odd_or_missing_figures_draw_nothing(figure):
    assert roc_svg(figure, "r") is None and confusion_svg(figure, "c") is None
    assert submission_pictures({"public": MEASURES, "figures": {"public": figure}}) == []


def test_a_long_curve_is_thinned_but_keeps_its_ends():
    many = [[i / 5000, (i / 5000) ** 0.5] for i in range(5001)]
    root = parsed(roc_svg({"roc": many}, "roc"))
    points = root.find(f"{SVG}polyline").get("points").split()
    assert len(points) <= 410 and points[0] == "58.0,292.0" and points[-1] == "338.0,12.0"


def test_pictures_leave_out_the_private_partition_unless_asked():
    metrics = {
        "public": MEASURES,
        "private": PRIVATE,
        "figures": {"public": PUBLIC_FIGURES, "private": PRIVATE_FIGURES},
    }
    assert [picture["partition"] for picture in submission_pictures(metrics)] == ["public"]
    both = submission_pictures(metrics, private=True)
    assert [picture["partition"] for picture in both] == ["public", "private"]
    assert both[1]["words"].startswith("Of 20 melanomas, the model caught 17")


def scored(app, participant: int, **fields) -> int:
    metrics = {
        "public": MEASURES,
        "private": PRIVATE,
        "figures": {"public": PUBLIC_FIGURES, "private": PRIVATE_FIGURES},
    }
    return make_submission(
        app, participant, status="done", public_score=0.8231, private_score=0.7777, metrics=metrics, **fields
    )


def test_the_participant_sees_the_public_pictures_with_their_numbers_and_never_the_private(app):
    ada = make_participant(app, "Ada")
    page = login_client(app, ada).get(f"/submissions/{scored(app, ada, history=HISTORY)}").get_data(as_text=True)
    assert 'id="roc-public"' in page and 'id="confusion-public"' in page
    assert "Of 20 melanomas, the model caught 11 and missed 9." in page  # the numbers in text, beside the picture
    assert 'id="curves-0"' in page and 'id="curves-1"' in page and "Per-epoch metrics" in page
    assert "Public ROC AUC" in page and "0.8231" in page and "sensitivity: melanomas caught" in page
    assert 'id="roc-private"' not in page and "0.7777" not in page and "caught 17" not in page
    assert re.search(r"<svg[^>]*role=\"img\"[^>]*aria-labelledby=", page)


def test_the_instructor_sees_the_private_pictures_too(app, client):
    submission = scored(app, make_participant(app, "Ada"))
    instructor_login(client)
    page = client.get(f"/submissions/{submission}").get_data(as_text=True)
    assert 'id="roc-public"' in page and 'id="roc-private"' in page and "caught 17" in page and "0.7777" in page


def test_an_older_submission_without_figures_still_renders(app):
    ada = make_participant(app, "Ada")
    old = make_submission(app, ada, status="done", public_score=0.61, metrics={"public": {"roc_auc": 0.61, "count": 9}})
    page = login_client(app, ada).get(f"/submissions/{old}")
    assert page.status_code == 200 and "0.6100" in page.get_data(as_text=True)
    assert "<svg" not in page.get_data(as_text=True)
