"""Who may use a view: decorators the blueprints share (the login itself is views/auth.py's ``require_login``)."""

from __future__ import annotations

import functools

from flask import abort, g


def instructor_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not g.is_instructor:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def participant_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.participant is None:
            abort(403, "Only participants can do this; log in with your display name.")
        return view(*args, **kwargs)

    return wrapped
