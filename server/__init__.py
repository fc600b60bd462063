"""The workshop server: a Flask app (``server.app``) with its command line (``server.cli``).

``flask --app server`` and WSGI servers find ``create_app`` here.
"""

from server.app import create_app, csrf

__all__ = ["create_app", "csrf"]
