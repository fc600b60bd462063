"""What the web user can reach, asked of the kernel as that user, and ACL entries for what it cannot."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from server.serving.acl import PERM_WORDS, grant_group
from server.serving.users import ServeError, WebUser


@dataclass
class Need:
    """A path the web workers must be able to use, with the access they need (os.R_OK | os.W_OK | os.X_OK)."""

    path: Path
    mode: int


def grant_needs(user: WebUser, needs: list[Need]) -> list[str]:
    """Ask the kernel, as the web user, what it cannot reach; grant that by ACL to its group; repeat until all pass."""
    notes: list[str] = []
    needs = [Need(need.path.resolve(), need.mode) for need in needs]
    granted: set[tuple[Path, int]] = set()
    for _round in range(64):  # each round passes at least one more folder level
        obstacles = probe_as(user, needs)
        if not obstacles:
            return notes
        for path, mode in obstacles:
            if mode & os.W_OK:  # write access comes only from the database folder's group, set above
                raise ServeError(_cannot_reach(user, path, mode, "serve gives write access to nothing else"))
            if (path, mode) in granted:
                raise ServeError(_cannot_reach(user, path, mode, "an ACL entry did not help"))
            try:
                changed = grant_group(path, user.gid, mode)
            except OSError as error:
                raise ServeError(_cannot_reach(user, path, mode, f"setting an ACL failed: {error.strerror}")) from None
            granted.add((path, mode))
            if changed:
                notes.append(f"{path}: {PERM_WORDS.get(mode, oct(mode))} for group {user.name} (ACL)")
    raise ServeError(f"the web user {user.name} still cannot reach what it needs after 64 rounds of ACL entries")


def _cannot_reach(user: WebUser, path: Path, mode: int, why: str) -> str:
    return (
        f"the web user {user.name} needs {PERM_WORDS.get(mode, oct(mode))} on {path} and {why}. Give it yourself "
        f"(for instance `chmod o+x {path}` for a folder), install the project and the instance outside "
        "closed folders such as /root, or set WORKSHOP_WEB_USER=root to keep the web app as root (not recommended)"
    )


def probe_as(user: WebUser, needs: list[Need]) -> list[tuple[Path, int]]:
    """The first obstacle on each needed path, found by a forked child that has become ``user``.

    (folder, X_OK) for a folder above it that the user cannot pass, (path, mode) when the path itself lacks
    the access; nothing for paths that work or do not exist. The kernel decides, ACLs and all.
    """
    paths = [(str(need.path), need.mode) for need in needs]
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        status = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)
            found = []
            for path, mode in paths:
                obstacle = _first_obstacle(path, mode)
                if obstacle is not None and obstacle not in found:
                    found.append(obstacle)
            data = json.dumps(found).encode()
            while data:
                data = data[os.write(writer, data) :]
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    chunks = []
    while chunk := os.read(reader, 65536):
        chunks.append(chunk)
    os.close(reader)
    _pid, wait_status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(wait_status) != 0:
        raise ServeError(f"could not check the folders as the web user {user.name}")
    return [(Path(path), mode) for path, mode in json.loads(b"".join(chunks))]


def _first_obstacle(path: str, mode: int) -> tuple[str, int] | None:
    parts = Path(path).parts
    for depth in range(1, len(parts)):
        folder = os.path.join(*parts[:depth])
        if not os.access(folder, os.X_OK):
            return folder, os.X_OK
    if not os.path.lexists(path):
        return None
    return None if os.access(path, mode) else (path, mode)
