"""Clinical metrics and the figures' data (issue 14, points 1 and 2): they agree with scikit-learn and with the
official ISIC scorer (``isic-challenge-scoring``) to 1e-9; a participant sees only the public figures; the
exercise's ``metric`` decides ``public_score``/``private_score``.

The official scorer computes ROC AUC, average precision, accuracy, sensitivity and specificity (a probability
above 0.5 is malignant: ``gt(0.5)``) and ``auc_sens_80``, the area under the ROC curve to the right of the point
where sensitivity reaches 80 %. That is not ISIC 2024's ``pauc_80`` (which leaves out the rectangle below 80 %
sensitivity), so ``pauc_80`` is compared with it through that rectangle, with the ISIC 2024 Kaggle formula written
out here independently, and with scikit-learn's McClish-standardised partial AUC turned back into a raw area.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import login_client, make_participant, make_submission
from isic_challenge_scoring import metrics as official
from isic_challenge_scoring.classification import ClassificationScore
from paths import PROJECT_ROOT
from sklearn import metrics as sk

from grader.data import HiddenLabels, dataset_paths, read_test_ids
from grader.exercises import ExerciseError, load_catalog, load_exercise
from grader.grading import _interpret
from grader.local_runner import at_threshold, pauc_80
from grader.metrics import MAX_ROC_POINTS, METRIC_KEYS, METRICS, evaluate
from grader.sandbox.limits import SandboxResult
from grader.scoring import score_partition, score_predictions
from server.db import new_session
from server.kept import predictions_path
from server.models import Submission
from server.rescoring import rescore

EXACT = {"abs": 1e-9, "rel": 0}


def _sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(14)
    labels = (rng.random(600) < 0.3).astype(int)
    smooth = 1 / (1 + np.exp(-(rng.normal(size=600) + 1.3 * labels - 0.6)))
    rare = np.zeros(3000, dtype=int)
    rare[rng.choice(3000, 30, replace=False)] = 1
    rare_scores = np.clip(rng.beta(1, 8, 3000) + 0.25 * rare * rng.random(3000), 0, 1)
    half = np.where(rng.random(600) < 0.4, 0.5, smooth)
    step = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    return {
        "continuous": (labels, smooth),
        "ties (one decimal)": (labels, np.round(smooth, 1)),
        "many exactly 0.5": (labels, half),
        "rare malignant (1 %)": (rare, rare_scores),
        "perfect": (labels, np.where(labels == 1, 0.9, 0.2)),
        "perfect ranking, all above 0.5": (labels, np.where(labels == 1, 0.8, 0.6)),
        "inverted": (labels, np.where(labels == 1, 0.1, 0.7)),
        "constant 0.5": (labels, np.full(600, 0.5)),
        "sensitivity exactly 0.8 at a corner": (step, np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.65, 0.4, 0.2, 0.1, 0.05])),
        "two images": (np.array([0, 1]), np.array([0.3, 0.2])),
    }


SETS = _sets()


def kaggle_pauc(truth: np.ndarray, scores: np.ndarray, min_tpr: float = 0.80) -> float:
    """The ISIC 2024 Kaggle metric, written out as published: flip labels and scores, cut at max_fpr."""
    v_gt = abs(np.asarray(truth) - 1)
    v_pred = np.array([1.0 - x for x in scores])
    max_fpr = abs(1 - min_tpr)
    fpr, tpr, _ = sk.roc_curve(v_gt, v_pred, sample_weight=None)
    stop = np.searchsorted(fpr, max_fpr, "right")
    x_interp = [fpr[stop - 1], fpr[stop]]
    y_interp = [tpr[stop - 1], tpr[stop]]
    tpr = np.append(tpr[:stop], np.interp(max_fpr, x_interp, y_interp))
    fpr = np.append(fpr[:stop], max_fpr)
    return sk.auc(fpr, tpr)


def sklearn_pauc(truth: np.ndarray, scores: np.ndarray, max_fpr: float = 0.2) -> float:
    """scikit-learn's standardised partial AUC (McClish) of the flipped problem, turned back into a raw area."""
    standardised = sk.roc_auc_score(1 - truth, -scores, max_fpr=max_fpr)
    low, high = max_fpr**2 / 2, max_fpr
    return low + (2 * standardised - 1) * (high - low)


def fpr_at_sensitivity(truth: np.ndarray, scores: np.ndarray, sensitivity: float) -> float:
    """Where the ROC curve first reaches ``sensitivity`` (interpolated along the segment that crosses it)."""
    fpr, tpr, _ = sk.roc_curve(truth, scores, drop_intermediate=False)
    index = int(np.argmax(tpr >= sensitivity))
    return float(np.interp(sensitivity, tpr[index - 1 : index + 1], fpr[index - 1 : index + 1]))


def official_scores(truth: np.ndarray, scores: np.ndarray) -> pd.Series:
    series = pd.Series(scores.astype(float))
    return ClassificationScore._category_score(
        pd.Series(truth.astype(float)), series, pd.Series(np.ones(len(truth))), "malignant"
    )


@pytest.mark.parametrize("name", list(SETS))
def test_metrics_agree_with_scikit_learn(name):
    truth, scores = SETS[name]
    metrics, _figures = evaluate(truth, scores)
    decided = (scores > 0.5).astype(int)
    assert list(metrics) == list(METRIC_KEYS) and metrics["count"] == len(truth)
    assert metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(truth, scores), **EXACT)
    assert metrics["pauc_80"] == pytest.approx(sklearn_pauc(truth, scores), **EXACT)
    assert metrics["average_precision"] == pytest.approx(sk.average_precision_score(truth, scores), **EXACT)
    assert metrics["sensitivity"] == pytest.approx(sk.recall_score(truth, decided), **EXACT)
    assert metrics["specificity"] == pytest.approx(sk.recall_score(truth, decided, pos_label=0), **EXACT)
    assert metrics["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(truth, decided), **EXACT)
    assert metrics["accuracy"] == pytest.approx(sk.accuracy_score(truth, decided), **EXACT)


@pytest.mark.parametrize("name", list(SETS))
def test_metrics_agree_with_the_official_isic_scorer(name):
    truth, scores = SETS[name]
    metrics, _figures = evaluate(truth, scores)
    theirs = official_scores(truth, scores)
    for ours, key in [
        ("roc_auc", "auc"),
        ("average_precision", "ap"),
        ("sensitivity", "sensitivity"),
        ("specificity", "specificity"),
        ("accuracy", "accuracy"),
    ]:
        assert metrics[ours] == pytest.approx(float(theirs[key]), **EXACT), (ours, key)
    balanced = (theirs["sensitivity"] + theirs["specificity"]) / 2
    assert metrics["balanced_accuracy"] == pytest.approx(float(balanced), **EXACT)
    below = 0.8 * (1 - fpr_at_sensitivity(truth, scores, 0.8))  # the rectangle auc_sens_80 counts and pauc_80 not
    assert metrics["pauc_80"] == pytest.approx(float(theirs["auc_sens_80"]) - below, **EXACT)
    assert metrics["pauc_80"] == pytest.approx(kaggle_pauc(truth, scores), **EXACT)
    assert 0 <= metrics["pauc_80"] <= 0.2


@pytest.mark.parametrize("name", [name for name in SETS if not np.any(SETS[name][1] == 0.5)])
def test_balanced_accuracy_agrees_with_the_official_multiclass_one(name):
    """The official aggregate takes the larger of (benign, malignant); at exactly 0.5 it says 'undecided'."""
    truth, scores = SETS[name]
    frame = pd.DataFrame({"benign": 1 - truth.astype(float), "malignant": truth.astype(float)})
    predicted = pd.DataFrame({"benign": 1 - scores, "malignant": scores})
    theirs = official.balanced_multiclass_accuracy(frame, predicted, pd.Series(np.ones(len(truth))))
    assert evaluate(truth, scores)[0]["balanced_accuracy"] == pytest.approx(float(theirs), **EXACT)


def test_a_probability_of_exactly_one_half_is_benign():
    truth = np.array([1, 1, 0, 0])
    metrics, figures = evaluate(truth, np.array([0.5, 0.9, 0.5, 0.1]))
    assert figures["confusion"] == {"tp": 1, "fn": 1, "fp": 0, "tn": 2}
    assert (metrics["sensitivity"], metrics["specificity"], metrics["accuracy"]) == (0.5, 1.0, 0.75)
    assert figures["operating_point"] == [0.0, 0.5]


@pytest.mark.parametrize("label", [0, 1])
def test_metrics_of_one_class_only_are_none_where_undefined(label):
    metrics, figures = evaluate(np.full(5, label), np.array([0.1, 0.4, 0.5, 0.6, 0.9]))
    undefined = {"roc_auc", "pauc_80", "average_precision", "balanced_accuracy"}
    undefined |= {"specificity"} if label == 1 else {"sensitivity"}
    assert {key for key, value in metrics.items() if value is None} == undefined
    assert metrics["accuracy"] == (0.4 if label == 1 else 0.6) and metrics["count"] == 5
    assert figures["roc"] is None and figures["operating_point"] is None and sum(figures["confusion"].values()) == 5
    empty, _ = evaluate(np.array([], dtype=int), np.array([]))
    assert empty["count"] == 0 and all(value is None for key, value in empty.items() if key != "count")


def test_partitions_carry_exactly_the_metric_keys_and_the_figures_sit_beside_them():
    labels = HiddenLabels(
        labels={"a1": 0, "b2": 1, "c3": 0, "d4": 1},
        partition={"a1": "public", "b2": "public", "c3": "private", "d4": "private"},
    )
    predictions = {"a1": 0.2, "b2": 0.8, "c3": 0.9, "d4": 0.1}
    scored = score_predictions(predictions, labels)
    assert list(scored) == ["public", "private", "figures"] and list(scored["figures"]) == ["public", "private"]
    assert set(scored["public"]) == set(scored["private"]) == {*METRICS, "count"}
    assert score_partition(predictions, labels, "private") == scored["private"]
    assert scored["figures"]["public"]["roc"] == [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    assert scored["figures"]["private"]["confusion"] == {"tp": 0, "fn": 1, "fp": 1, "tn": 0}


def test_small_roc_curves_are_scikit_learns_and_the_operating_point_is_the_confusion_at_one_half():
    for truth, scores in SETS.values():
        metrics, figures = evaluate(truth, scores)
        fpr, tpr, _ = sk.roc_curve(truth, scores)
        if len(fpr) <= MAX_ROC_POINTS:
            assert figures["roc"] == [[round(x, 6), round(y, 6)] for x, y in zip(fpr, tpr, strict=True)]
        tn, fp, fn, tp = sk.confusion_matrix(truth, (scores > 0.5).astype(int), labels=[0, 1]).ravel()
        assert figures["confusion"] == {"tp": tp, "fn": fn, "fp": fp, "tn": tn}
        assert figures["operating_point"] == [fp / (fp + tn), metrics["sensitivity"]]


def _distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    starts, ends = line[:-1], line[1:]
    direction = ends - starts
    lengths = np.maximum((direction**2).sum(axis=1), 1e-300)
    offsets = points[:, None, :] - starts[None, :, :]
    along = np.clip((offsets * direction[None]).sum(axis=2) / lengths[None], 0, 1)
    nearest = starts[None] + along[..., None] * direction[None]
    return np.sqrt(((points[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)


def test_a_large_roc_curve_is_thinned_keeping_its_shape():
    rng = np.random.default_rng(7)
    truth = (rng.random(10_000) < 0.2).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=10_000) + truth)))
    metrics, figures = evaluate(truth, scores)
    roc = np.array(figures["roc"])
    fpr, tpr, _ = sk.roc_curve(truth, scores)
    assert len(fpr) > 1000 and 100 < len(roc) <= MAX_ROC_POINTS
    assert roc[0].tolist() == [0, 0] and roc[-1].tolist() == [1, 1]
    assert np.all(np.diff(roc, axis=0) >= 0)  # still a ROC curve: both rates only grow
    assert sk.auc(roc[:, 0], roc[:, 1]) == pytest.approx(metrics["roc_auc"], abs=2e-3)
    assert _distance_to_polyline(np.column_stack([fpr, tpr]), roc).max() < 0.01


@pytest.mark.parametrize("name", list(SETS))
def test_the_starter_kits_runner_scores_as_the_server(name):
    truth, scores = SETS[name]
    metrics, _figures = evaluate(truth, scores)
    assert pauc_80(list(truth), list(scores)) == pytest.approx(metrics["pauc_80"], **EXACT)
    assert at_threshold(list(truth), list(scores)) == (metrics["sensitivity"], metrics["specificity"])


# --- the exercise's metric --------------------------------------------------------------------------------------


def _exercise_folder(tmp_path, metric_line: str, band: str = "[0.6, 0.95]"):
    folder = tmp_path / "example"
    folder.mkdir(parents=True)
    spec = (PROJECT_ROOT / "exercises" / "_example.toml").read_text()
    spec = spec.replace('\nmetric = "roc_auc"\n', f"\n{metric_line}\n").replace("[0.6, 0.95]", band)
    (folder / "exercise.toml").write_text(spec)
    for name in ("README.md", "starter.py", "solution.py"):
        (folder / name).write_text("def train(data): ...\n")
    return folder


def test_the_catalog_names_each_exercises_metric_and_its_label(tmp_path):
    exercises = load_catalog(PROJECT_ROOT / "exercises")
    assert exercises["open-challenge"].metric == "pauc_80"
    assert exercises["open-challenge"].metric_label == "partial AUC above 80 % sensitivity"
    assert exercises["cnn-from-scratch"].metric == "roc_auc" and exercises["cnn-from-scratch"].metric_label == "ROC AUC"
    assert load_exercise(_exercise_folder(tmp_path, "")).metric == "roc_auc"  # the default


@pytest.mark.parametrize("line", ['metric = "count"', 'metric = "log_loss"', 'metric = "ROC AUC"', "metric = 1"])
def test_an_unknown_or_unrankable_metric_is_refused_when_the_catalog_loads(tmp_path, line):
    with pytest.raises(ExerciseError, match="field 'metric' must be one of 'roc_auc', 'pauc_80'"):
        load_exercise(_exercise_folder(tmp_path, line))


def test_a_score_band_outside_the_metrics_range_is_refused(tmp_path):
    with pytest.raises(ExerciseError, match="outside the range of metric 'pauc_80' \\(0 to 0.2\\)"):
        load_exercise(_exercise_folder(tmp_path, 'metric = "pauc_80"'))
    assert load_exercise(_exercise_folder(tmp_path / "b", 'metric = "pauc_80"', "[0.05, 0.15]")).metric == "pauc_80"


def _graded(app, data_dir, tmp_path, submission_id: int, metric: str):
    ids = read_test_ids(dataset_paths(data_dir, "synthetic"))
    out = tmp_path / f"out-{submission_id}"
    out.mkdir()
    (out / "status.json").write_text('{"ok": true}')
    rows = "".join(f"{image_id},{(index * 37 % 101) / 100}\n" for index, image_id in enumerate(ids))
    (out / "predictions.csv").write_text("image_id,malignant\n" + rows)
    run = SandboxResult(exit_code=0, timed_out=False, out_of_memory=False, log="", log_bytes=0, seconds=1.0)
    keep = predictions_path(app, submission_id)
    return _interpret(run, out, dataset_paths(data_dir, "synthetic"), keep, metric=metric)


@pytest.mark.parametrize("metric", ["pauc_80", "average_precision", "roc_auc"])
def test_the_exercises_metric_decides_the_scores_of_grading(app, data_dir, tmp_path, metric):
    result = _graded(app, data_dir, tmp_path, 1, metric)
    assert result.status == "done" and result.metrics["figures"]["private"]["roc"][-1] == [1.0, 1.0]
    assert result.public_score == result.metrics["public"][metric]
    assert result.private_score == result.metrics["private"][metric]


def test_a_rescore_ranks_by_the_exercises_metric_and_writes_the_figures(app, data_dir, tmp_path):
    submission_id = make_submission(app, make_participant(app), slug="open-challenge", status="done")
    graded = _graded(app, data_dir, tmp_path, submission_id, "roc_auc")  # as if the exercise had changed metric
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        row.public_score, row.private_score, row.metrics = graded.public_score, graded.private_score, {}
        metrics = rescore(app, db, row)
        db.commit()
        assert metrics["figures"] == graded.metrics["figures"] and row.metrics == graded.metrics
        assert (row.public_score, row.private_score) == (metrics["public"]["pauc_80"], metrics["private"]["pauc_80"])
        assert row.public_score != graded.public_score and 0 <= row.public_score <= 0.2


# --- who sees which figures -------------------------------------------------------------------------------------


def test_a_participant_sees_the_public_figures_only_and_the_instructor_all(app):
    rng = np.random.default_rng(3)
    parts = {}
    for part in ("public", "private"):
        truth = (rng.random(40) < 0.4).astype(int)
        parts[part] = evaluate(truth, rng.random(40))
    metrics = {part: parts[part][0] for part in parts} | {"figures": {part: parts[part][1] for part in parts}}
    ada = make_participant(app, "Ada")
    submission_id = make_submission(app, ada, status="done", public_score=0.5, private_score=0.6, metrics=metrics)
    own = login_client(app, ada).get(f"/submissions/{submission_id}.json").get_json()
    assert own["metrics"] == {"public": metrics["public"], "figures": {"public": metrics["figures"]["public"]}}
    instructor = app.test_client()
    with instructor.session_transaction() as session:
        session["role"] = "instructor"
    everything = instructor.get(f"/submissions/{submission_id}.json").get_json()
    assert everything["metrics"] == metrics and everything["metrics"]["figures"]["private"]["roc"]
    for page in (f"/submissions/{submission_id}", f"/instructor/submissions/{submission_id}"):
        assert instructor.get(page).status_code == 200  # the pages take metrics with figures in their stride
    assert login_client(app, ada).get(f"/submissions/{submission_id}").status_code == 200
