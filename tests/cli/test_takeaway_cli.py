"""`workshop takeaway [NAME] --out DIR`: one zip per participant, named from a safe slug of the display name."""

from __future__ import annotations

import io
import zipfile

from factories import make_participant, make_submission


def test_all_bundles_one_zip_per_participant_each_with_only_their_code(app, runner, tmp_path):
    ada, bo = make_participant(app, "Ada ../Lovelace"), make_participant(app, "Bø")
    make_submission(app, ada, code="ada_code = 1\n", status="done", public_score=0.7)
    make_submission(app, bo, code="bo_code = 2\n")
    out = tmp_path / "bundles"
    result = runner.invoke(args=["takeaway", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        f"takeaway-ada-lovelace-{ada}.zip",
        f"takeaway-bo-{bo}.zip",
    ]
    assert "Wrote 2 takeaway bundles" in result.output
    with zipfile.ZipFile(out / f"takeaway-ada-lovelace-{ada}.zip") as archive:
        code = [archive.read(name) for name in archive.namelist() if "/submissions/" in name]
        assert code == [b"ada_code = 1\n"]
        assert all(name.startswith(f"takeaway-ada-lovelace-{ada}/") for name in archive.namelist())


def test_one_bundle_by_name(app, runner, tmp_path):
    make_participant(app, "Ada")
    bo = make_participant(app, "Bo")
    make_submission(app, bo, code="bo_code = 2\n")
    result = runner.invoke(args=["takeaway", "bo", "--out", str(tmp_path)])  # names match as at login
    assert result.exit_code == 0, result.output
    assert [path.name for path in tmp_path.glob("*.zip")] == [f"takeaway-bo-{bo}.zip"]
    archive = zipfile.ZipFile(io.BytesIO((tmp_path / f"takeaway-bo-{bo}.zip").read_bytes()))
    assert any(name.endswith("CONTINUE_AT_HOME.md") for name in archive.namelist())


def test_an_unknown_name_is_an_error_and_writes_nothing(app, runner, tmp_path):
    make_participant(app, "Ada")
    result = runner.invoke(args=["takeaway", "Nobody", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "no participant called 'Nobody'" in result.output
    assert not (tmp_path / "out").exists()
