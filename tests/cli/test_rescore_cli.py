"""``workshop rescore`` and ``workshop rerun``: one submission or a whole exercise; rerunning an exercise asks --yes."""

from __future__ import annotations

from factories import make_participant, make_submission

from grader.data import dataset_paths, read_test_ids
from grader.grading import write_predictions
from server.db import new_session
from server.job_store import predictions_path
from server.models import Submission


def _row(app, submission_id: int) -> Submission:
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        db.expunge(row)
        return row


def _keep(app, data_dir, submission_id: int) -> None:
    ids = read_test_ids(dataset_paths(data_dir, "synthetic"))
    write_predictions(
        {image_id: index / len(ids) for index, image_id in enumerate(ids)}, predictions_path(app, submission_id)
    )


def test_rescore_one_and_an_exercise(app, runner, data_dir):
    ada = make_participant(app)
    kept, bare = (make_submission(app, ada, status="done", public_score=0.1) for _ in range(2))
    _keep(app, data_dir, kept)
    result = runner.invoke(args=["rescore", str(kept)])
    assert result.exit_code == 0, result.output
    assert f"#{kept} rescored" in result.output and _row(app, kept).public_score != 0.1
    refused = runner.invoke(args=["rescore", str(bare)])
    assert refused.exit_code != 0 and "rerun" in refused.output
    both = runner.invoke(args=["rescore", "--exercise", "cnn-from-scratch"])
    assert both.exit_code == 0 and "Rescored 1 submissions" in both.output and f"#{bare}:" in both.output
    assert len(_row(app, kept).verdicts) == 2


def test_rerun_of_an_exercise_asks_yes(app, runner):
    ada = make_participant(app)
    done = make_submission(app, ada, status="done", public_score=0.5)
    refused = runner.invoke(args=["rerun", "--exercise", "cnn-from-scratch"])
    assert refused.exit_code != 0 and "--yes" in refused.output and _row(app, done).status == "done"
    result = runner.invoke(args=["rerun", "--exercise", "cnn-from-scratch", "--yes"])
    assert result.exit_code == 0 and "Queued 1 submissions" in result.output
    row = _row(app, done)
    assert (row.status, row.priority, row.charged, row.verdicts[0]["public_score"]) == ("queued", -1, False, 0.5)


def test_rerun_one_and_the_refusals(app, runner):
    ada = make_participant(app)
    done = make_submission(app, ada, status="done")
    assert runner.invoke(args=["rerun", str(done)]).exit_code == 0 and _row(app, done).priority == -1
    again = runner.invoke(args=["rerun", str(done)])  # now queued: wait or cancel first
    assert again.exit_code != 0 and "still queued" in again.output
    assert runner.invoke(args=["rerun", "999"]).exit_code != 0
    assert runner.invoke(args=["rerun"]).exit_code != 0  # neither an id nor --exercise
