"""Capped scratch mounts: the ones a dead worker left are unmounted."""

from __future__ import annotations

import os

import pytest
from sandbox_jobs import dead_pid

from grader.sandbox import unmount_stale_scratch

pytestmark = [pytest.mark.sandbox]


def test_scratch_mounts_of_a_dead_worker_are_unmounted(tmp_path):
    import ctypes

    target = tmp_path / "job with space" / "tmp"
    target.mkdir(parents=True)
    source = f"workshop-job-{dead_pid()}".encode()
    assert ctypes.CDLL(None).mount(source, bytes(target), b"tmpfs", 0, b"size=1m") == 0
    assert os.path.ismount(target)
    assert str(target) in unmount_stale_scratch()
    assert not os.path.ismount(target)
