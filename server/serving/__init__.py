"""`workshop serve` started as root: the web app drops root, the worker slots keep it.

Only the worker slots need root (they start bubblewrap). So, when ``workshop serve`` runs as root:

* the worker slots run as root in a child process of their own (the same code as ``workshop worker``),
  supervised by serve: restarted when it dies, stopped when serve stops;
* gunicorn's web workers run as an unprivileged user, ``WORKSHOP_WEB_USER`` (created as a system user
  without home or login shell when missing), switched by gunicorn's own ``user``/``group`` settings,
  with no supplementary group left over from root;
* the instance folder lets each do its part and nobody else read secrets (see ``prepare_instance``).

Not started as root, nothing of this applies: everything runs as the invoking user, slots inside the web
process. ``WORKSHOP_WEB_USER=root`` keeps the web app as root too (not recommended; it says so).

The modules: ``users`` (the web user), ``permissions`` (``prepare_instance``), ``database`` (the SQLite
file's folder), ``acl`` (POSIX ACLs), ``reach`` (what the web user can reach), ``web`` (preloading and
gunicorn's settings), ``slots`` (the worker slots' supervised process, ``python -m server.serving``).
"""

from server.serving.permissions import prepare_instance
from server.serving.users import ServeError, WebUser, web_user_for
from server.serving.web import gunicorn_settings, preload

__all__ = ["ServeError", "WebUser", "gunicorn_settings", "preload", "prepare_instance", "web_user_for"]
