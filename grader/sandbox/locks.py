"""Claims on sandbox uids across every worker process of one host: flock'd files in a folder only we can write.

The sweeps kill every process of a job's uid, so a uid must belong to one slot at a time. The lock files
live in a folder owned by the user running the slots (root: ``/run/workshop/slots``; anyone else:
``<tmp>/workshop-slots-<uid>``; ``WORKSHOP_SLOT_LOCK_DIR`` chooses another), that nobody else can write.
The folder is checked before every use (a real directory, right owner, no group or other write bit, every
folder above it owned by root or us and not writable by others unless sticky), and each lock file is
opened relative to it without following links, so a planted symlink or a pre-created folder is refused
instead of followed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
import threading
from pathlib import Path

from grader.sandbox.limits import BASE_UID

LOCK_DIR_ENV = "WORKSHOP_SLOT_LOCK_DIR"
ROOT_LOCK_DIR = Path("/run/workshop/slots")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class LockFolderUnsafe(RuntimeError):
    """The lock folder or a lock file could be controlled by someone else: refuse rather than use it."""


def default_lock_dir() -> Path:
    """``WORKSHOP_SLOT_LOCK_DIR`` when set; else /run/workshop/slots for root, a per-user folder for others."""
    if configured := os.environ.get(LOCK_DIR_ENV):
        return Path(configured)
    uid = os.geteuid()
    return ROOT_LOCK_DIR if uid == 0 else Path(tempfile.gettempdir()) / f"workshop-slots-{uid}"


def _describe(info: os.stat_result) -> str:
    return f"owner uid {info.st_uid}, mode {stat.filemode(info.st_mode)}"


def open_lock_folder(folder: Path, owner: int | None = None) -> int:
    """Create (0700) or open ``folder`` after checking it and every folder above it; returns a directory fd.

    Folders above it must be owned by root or ``owner`` and not writable by group or others unless sticky
    (like /tmp); the folder itself must be owned by ``owner`` and writable by nobody else. Missing folders are
    created on the way (0755 above, 0700 for the folder itself).
    """
    owner = os.geteuid() if owner is None else owner
    folder = Path(os.path.abspath(folder))
    if folder == Path("/"):
        raise LockFolderUnsafe("the slot lock folder cannot be /")
    # symlinks above the folder (e.g. /var/run -> /run) are resolved once; from there on nothing is followed
    target = Path(os.path.realpath(folder.parent)) / folder.name
    parts = target.parts[1:]
    fd = os.open("/", _DIR_FLAGS)
    path = Path("/")
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            path = path / part
            created = False
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700 if last else 0o755, dir_fd=fd)
                created = True
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                raise LockFolderUnsafe(
                    f"the slot lock folder {path} is not a real directory ({error.strerror}); "
                    f"remove it or choose another with {LOCK_DIR_ENV}"
                ) from None
            os.close(fd)
            fd = child
            if created:
                os.fchmod(fd, 0o700 if last else 0o755)  # exact modes, whatever the umask
            info = os.fstat(fd)
            writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            if last and (info.st_uid != owner or writable_by_others):
                raise LockFolderUnsafe(
                    f"refusing the slot lock folder {path}: it must be owned by uid {owner} and writable by "
                    f"nobody else, it has {_describe(info)}; remove it or choose another with {LOCK_DIR_ENV}"
                )
            if not last and (info.st_uid not in (0, owner) or (writable_by_others and not info.st_mode & stat.S_ISVTX)):
                raise LockFolderUnsafe(
                    f"refusing the slot lock folder {target}: the folder {path} above it could be changed by "
                    f"another user ({_describe(info)}); choose another with {LOCK_DIR_ENV}"
                )
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_lock_file(folder_fd: int, name: str) -> int:
    """Open (or create, 0600) the lock file ``name`` inside the folder, never following a link; returns its fd."""
    try:
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=folder_fd)
    except OSError as error:  # ELOOP: a symbolic link planted in place of the lock file
        raise LockFolderUnsafe(f"refusing the slot lock file {name}: {error.strerror} (a symbolic link?)") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.fstat(folder_fd).st_uid:
        os.close(fd)
        raise LockFolderUnsafe(f"refusing the slot lock file {name}: not a regular file of ours ({_describe(info)})")
    return fd


class SlotLock:
    """The one claim on a sandbox uid across every worker process on this host: an flock on ``uid-N.lock``.

    ``SlotLock()`` claims the first free uid from ``base_uid`` on (a worker slot, a check, a one-off grade);
    ``SlotLock(uid=N)`` claims that uid, waiting while another process or thread holds it (the sandbox does
    this before every run, so two jobs can never share a uid). A thread that already holds uid N gets it
    again at once (re-entrant), so a slot that claimed its uid runs its jobs without waiting on itself.
    """

    def __init__(
        self, lock_dir: Path | None = None, base_uid: int = BASE_UID, max_slots: int = 256, uid: int | None = None
    ):
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self.base_uid, self.max_slots, self.wanted = base_uid, max_slots, uid
        self.fd: int | None = None
        self.uid: int | None = None

    def acquire(self) -> int:
        """Claim a uid (see the class); raises LockFolderUnsafe where the folder is not ours."""
        held = _held_here()
        if self.wanted is not None and self.wanted in held:
            self.uid = self.wanted  # this thread holds it already; nothing to release later
            return self.uid
        folder = open_lock_folder(self.lock_dir)
        try:
            if self.wanted is not None:
                fd = open_lock_file(folder, f"uid-{self.wanted}.lock")
                fcntl.flock(fd, fcntl.LOCK_EX)
                return self._claimed(fd, self.wanted)
            for index in range(self.max_slots):
                fd = open_lock_file(folder, f"uid-{self.base_uid + index}.lock")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return self._claimed(fd, self.base_uid + index)
        finally:
            os.close(folder)
        raise RuntimeError(f"all {self.max_slots} sandbox uids on this host are in use")

    def _claimed(self, fd: int, uid: int) -> int:
        self.fd, self.uid = fd, uid
        _held_here().add(uid)
        return uid

    def release(self) -> None:
        """Give the uid back (closing the file drops the lock); a re-entrant claim leaves it to the first."""
        if self.fd is not None:
            _held_here().discard(self.uid)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> int:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


_THREAD = threading.local()


def _held_here() -> set[int]:
    """The uids the calling thread holds a SlotLock on."""
    if not hasattr(_THREAD, "uids"):
        _THREAD.uids = set()
    return _THREAD.uids


_PARTNERS: dict[int, int] = {}  # a slot with warm sandboxes holds two uids, used in turn (grader/warm_pool.py)
_PARTNERS_LOCK = threading.Lock()


def pair_uids(first: int, second: int) -> None:
    """Record that one slot holds both uids: the next job's sandbox warms under one while a job runs as the other."""
    with _PARTNERS_LOCK:
        _PARTNERS[first], _PARTNERS[second] = second, first


def unpair_uids(first: int) -> None:
    with _PARTNERS_LOCK:
        second = _PARTNERS.pop(first, None)
        if second is not None:
            _PARTNERS.pop(second, None)


def partner_uid(uid: int | None) -> int | None:
    """The other uid of ``uid``'s slot (None: the slot holds one uid)."""
    with _PARTNERS_LOCK:
        return _PARTNERS.get(uid) if uid is not None else None
