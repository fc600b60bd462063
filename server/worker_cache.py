"""A remote worker's own copy of the public data and the allowed weights, fetched once and checked by SHA-256.

The cache lives under the worker's instance folder (``worker-cache/datasets/<name>/public/``) and the weights in
its KERAS_HOME/models, where the sandbox looks for them. A file is fetched when it is missing or its hash differs
from the server's list; slots of one machine (threads or processes) take a file lock so each file is fetched
once. Nothing private is ever asked for: the server would refuse it anyway.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from grader.data import DatasetPaths, dataset_paths
from grader.data.checksum import file_sha256

_thread_lock = threading.Lock()


class CacheError(RuntimeError):
    """The server's files could not be fetched or did not match their hash (retried as infrastructure)."""


class WorkerCache:
    def __init__(self, client, root: Path, models_dir: Path):
        self.client, self.root, self.models_dir = client, Path(root), Path(models_dir)
        self._weights_checked = False

    def dataset(self, name: str) -> DatasetPaths:
        """The public part of data set ``name``, complete and matching the server's hashes."""
        paths = dataset_paths(self.root / "datasets", name)  # rejects names that could escape the cache
        manifest = self.client.get_json(f"/datasets/{name}")
        with self._locked():
            for item in manifest["files"]:
                self._ensure(f"/datasets/{name}/public/{item['name']}", paths.public / item["name"], item)
        return paths

    def weights(self) -> None:
        """The allowed weights files the server has, in KERAS_HOME/models (checked once per worker process)."""
        if self._weights_checked:
            return
        manifest = self.client.get_json("/weights")
        with self._locked():
            for item in manifest["files"]:
                self._ensure(f"/weights/{item['name']}", self.models_dir / item["name"], item)
        self._weights_checked = True

    def _ensure(self, url: str, path: Path, item: dict) -> None:
        name = str(item.get("name", ""))
        if not name or "/" in name or name.startswith(".") or path.name != name:
            raise CacheError(f"the server listed an odd file name {name[:60]!r}")
        if path.is_file() and path.stat().st_size == item["size"] and file_sha256(path) == item["sha256"]:
            return
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755)  # noqa: S103 - the sandbox's uid reads the files through the bind
        partial = path.with_name(f".{name}.part")
        self.client.download(url, partial)
        if partial.stat().st_size != item["size"] or file_sha256(partial) != item["sha256"]:
            partial.unlink(missing_ok=True)
            raise CacheError(f"{name} from the server does not match its SHA-256; not used")
        os.chmod(partial, 0o644)
        os.replace(partial, path)

    def _locked(self):
        return _CacheLock(self.root / ".lock")


class _CacheLock:
    """This process's threads one at a time (a lock), and the machine's worker processes too (flock)."""

    def __init__(self, path: Path):
        self.path, self.handle = path, None

    def __enter__(self):
        _thread_lock.acquire()
        try:
            self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            self.handle = self.path.open("a")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        except BaseException:
            _thread_lock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
        finally:
            _thread_lock.release()
