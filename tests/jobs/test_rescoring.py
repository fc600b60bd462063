"""Rescoring from kept predictions (same scores as grading, no training), reruns, and stuck jobs."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta

import pytest
from factories import make_participant, make_submission

from grader.data import dataset_paths, read_test_ids
from grader.grading import _interpret
from grader.sandbox.limits import SandboxResult
from server.db import new_session
from server.job_store import RESTART_NOTE, DatabaseJobStore, predictions_path
from server.models import Submission, utcnow
from server.rescoring import CannotRescore, free_stuck, rerun, rerun_exercise, rescore, rescore_exercise


def known_predictions(data_dir) -> dict[str, float]:
    """Fixed, distinct probabilities for every test id (deterministic, not all correct)."""
    ids = read_test_ids(dataset_paths(data_dir, "synthetic"))
    return {image_id: round((index * 37 % 101) / 100, 2) for index, image_id in enumerate(ids)}


def grade_with_kept(app, data_dir, tmp_path, submission_id: int):
    """What grading does after the sandbox ran: read predictions.csv, score it, keep the validated file."""
    out = tmp_path / f"out-{submission_id}"
    out.mkdir()
    (out / "status.json").write_text('{"ok": true}')
    rows = "".join(f"{key},{value}\n" for key, value in known_predictions(data_dir).items())
    (out / "predictions.csv").write_text("image_id,malignant\n" + rows)
    run = SandboxResult(exit_code=0, timed_out=False, out_of_memory=False, log="", log_bytes=0, seconds=1.0)
    keep = predictions_path(app, submission_id)
    return _interpret(run, out, dataset_paths(data_dir, "synthetic"), keep)


def graded_submission(app, data_dir, tmp_path, name="Ada") -> tuple[int, object]:
    participant = make_participant(app, name)
    submission_id = make_submission(app, participant, status="done")
    result = grade_with_kept(app, data_dir, tmp_path, submission_id)
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        row.public_score, row.private_score, row.metrics = result.public_score, result.private_score, result.metrics
        db.commit()
    return submission_id, result


def test_rescore_from_kept_predictions_gives_the_scores_of_grading(app, data_dir, tmp_path):
    submission_id, graded = graded_submission(app, data_dir, tmp_path)
    kept = predictions_path(app, submission_id)
    assert kept.is_file() and kept.stat().st_mode & 0o777 == 0o600
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        metrics = rescore(app, db, row)
        db.commit()
        assert metrics == graded.metrics
        assert (row.public_score, row.private_score) == (graded.public_score, graded.private_score)
        assert row.verdicts[0]["how"] == "graded" and row.verdicts[0]["replaced_by"] == "rescored"


def test_a_changed_label_file_changes_the_score_and_keeps_the_old_verdict(app, data_dir, tmp_path):
    submission_id, graded = graded_submission(app, data_dir, tmp_path)
    changed = tmp_path / "changed-data"
    shutil.copytree(data_dir, changed)
    labels_file = dataset_paths(changed, "synthetic").test_labels
    rows = [line.split(",") for line in labels_file.read_text().splitlines()]
    flipped = [rows[0]] + [[image_id, "1" if label == "0" else "0", part] for image_id, label, part in rows[1:]]
    labels_file.write_text("".join(",".join(row) + "\n" for row in flipped))
    app.config["DATA_DIR"] = str(changed)
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        rescore(app, db, row)
        db.commit()
        assert row.public_score == pytest.approx(1 - graded.public_score)
        assert row.verdicts[-1]["public_score"] == graded.public_score
        assert row.verdicts[-1]["status"] == "done"


def test_a_changed_scorer_changes_the_score(app, data_dir, tmp_path, monkeypatch):
    submission_id, _graded = graded_submission(app, data_dir, tmp_path)
    import server.rescoring

    def constant(predictions, labels):
        return {part: {"roc_auc": 0.5} for part in ("public", "private")}

    monkeypatch.setattr(server.rescoring, "score_predictions", constant)
    with new_session(app) as db:
        outcome = rescore_exercise(app, db, "cnn-from-scratch")
        row = db.get(Submission, submission_id)
        assert outcome.done == [submission_id] and row.public_score == 0.5 and len(row.verdicts) == 1


def test_without_kept_predictions_a_rescore_is_refused_and_suggests_a_rerun(app):
    submission_id = make_submission(app, make_participant(app), status="done", public_score=0.7)
    with new_session(app) as db:
        with pytest.raises(CannotRescore, match="rerun"):
            rescore(app, db, db.get(Submission, submission_id))
        outcome = rescore_exercise(app, db, "cnn-from-scratch")
        assert outcome.done == [] and "rerun" in outcome.refused[submission_id]
        assert db.get(Submission, submission_id).public_score == 0.7


def test_rerun_queues_at_low_priority_never_charged_with_the_old_verdict(app):
    participant = make_participant(app)
    done = make_submission(app, participant, status="done", public_score=0.7, private_score=0.6)
    failed = make_submission(app, participant, status="failed", error_kind="timeout")
    waiting = make_submission(app, participant, status="queued")
    with new_session(app) as db:
        with pytest.raises(CannotRescore):
            rerun(db, db.get(Submission, waiting))
        assert rerun_exercise(db, "cnn-from-scratch").done == [done, failed]
        row = db.get(Submission, done)
        assert (row.status, row.priority, row.charged, row.public_score) == ("queued", -1, False, None)
        assert row.verdicts == [row.verdicts[0]] and row.verdicts[0]["private_score"] == 0.6
        assert row.verdicts[0]["how"] == "graded" and row.verdicts[0]["replaced_by"] == "rerun"
        assert db.get(Submission, failed).verdicts[0]["error_kind"] == "timeout"


def test_an_expired_lease_requeues_with_a_note_the_participant_sees(any_db_app):
    app = any_db_app
    submission_id = make_submission(app, make_participant(app), status="queued")
    store = DatabaseJobStore(app, max_attempts=3)
    assert store.claim_next_job("w", 60).submission_id == submission_id
    with new_session(app) as db:
        db.get(Submission, submission_id).lease_expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
    store.claim_next_job("w", 60)  # requeues it (then waits out its back-off)
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        assert row.status == "queued" and row.notes == [RESTART_NOTE]


def test_the_restart_note_and_queue_time_warnings_stay_after_the_verdict(app, data_dir, tmp_path):
    """The participant reads why their job restarted on the finished page too, with the contract check's
    warnings; a rerun starts again from the warnings alone."""
    warning = "Warning: line 1 imports requests: the sandbox has no network."
    submission_id = make_submission(app, make_participant(app), status="queued", notes=[warning])
    store = DatabaseJobStore(app, max_attempts=3)
    store.claim_next_job("w", 60)
    with new_session(app) as db:
        db.get(Submission, submission_id).lease_expires_at = utcnow() - timedelta(seconds=1)
        db.get(Submission, submission_id).not_before = None
        db.commit()
    store.claim_next_job("w", 60)  # requeues it with the note
    with new_session(app) as db:
        db.get(Submission, submission_id).not_before = None
        db.commit()
    job = store.claim_next_job("w", 60)
    assert job is not None and job.submission_id == submission_id
    result = grade_with_kept(app, data_dir, tmp_path, submission_id)
    assert store.record_result(job, replace(result, notes=["training stopped early at the time limit"]))
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        assert row.status == "done"
        assert row.notes == [warning, RESTART_NOTE, "training stopped early at the time limit"]
        rerun(db, row)
        assert row.notes == [warning]
        db.commit()


def test_only_a_job_whose_worker_vanished_is_failed_or_requeued(app):
    participant = make_participant(app)
    later = utcnow() + timedelta(minutes=5)
    alive = make_submission(app, participant, status="running", lease_expires_at=later, claim_token="t")
    gone = make_submission(app, participant, status="running", lease_expires_at=utcnow() - timedelta(seconds=5))
    with new_session(app) as db:
        with pytest.raises(CannotRescore, match="cancel"):
            free_stuck(db, db.get(Submission, alive), "fail")
        row = db.get(Submission, gone)
        free_stuck(db, row, "requeue")
        assert (row.status, row.claim_token, row.notes) == ("queued", None, [RESTART_NOTE])
        row.status, row.lease_expires_at = "running", utcnow() - timedelta(seconds=5)
        free_stuck(db, row, "fail")
        assert (row.status, row.error_kind) == ("failed", "infrastructure") and len(row.notes) == 2
        db.commit()
