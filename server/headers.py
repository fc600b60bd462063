"""Security headers on every response: no framing, no sniffing, scripts and styles only from this server.

Static files carry no session cookie. Flask refreshes a permanent session's cookie on every response, static
ones included, so a script or style still loading from the page before a logout (or another login) came back
with the old session's cookie and overwrote the new one: the next form then failed its CSRF check ("The form
expired"). A static file neither reads nor changes the session, so its response leaves the cookie alone.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class PageSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except that a static file's response never sets the cookie."""

    def should_set_cookie(self, app: Flask, session) -> bool:
        if request.endpoint == "static":
            return False
        return super().should_set_cookie(app, session)


def init_app(app: Flask) -> None:
    app.session_interface = PageSessionInterface()

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
