"""Notes on a submission page: the contract check's warnings stand out as warnings, other notes read as notes."""

from __future__ import annotations

from factories import login_client, make_participant, make_submission


def test_warnings_are_shown_as_warnings_and_notes_as_notes(app):
    ada = make_participant(app, "Ada")
    notes = ["Warning: line 1 imports <requests>: the sandbox has no network.", "your job was restarted"]
    submission = make_submission(app, ada, status="done", public_score=0.7, notes=notes)
    page = login_client(app, ada).get(f"/submissions/{submission}").get_data(as_text=True)
    assert '<p class="note warning" role="note"><strong>Warning:</strong> line 1 imports &lt;requests&gt;' in page
    assert "Note: Warning" not in page and '<p class="note">Note: your job was restarted</p>' in page
