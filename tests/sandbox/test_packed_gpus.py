"""Packed GPUs (``--slots-per-gpu N``): N slots per GPU, each job capped at its share of the GPU's memory."""

from __future__ import annotations

import dataclasses
import os
import sys
import types

import click
import pytest
from sandbox_jobs import stub_nvidia_smi

from grader import harness
from grader.data import dataset_paths
from grader.grading import GradingSettings, _sandbox_job, limits_for
from grader.sandbox import BwrapSandbox, SandboxUnavailable
from grader.sandbox.gpus import GpuError, gpu_memory_cap, other_than_slots, packed
from server.catalog import catalog
from server.cli.serve import gpu_slots, share_gpus

TWO_GPUS = "0, NVIDIA H200, 143771, 580.159.03, 0\n1, NVIDIA H200, 143771, 580.159.03, 1\n"


def test_the_memory_cap_is_the_exercises_or_the_gpus_share():
    assert gpu_memory_cap(143771, 1) is None  # one slot per GPU: the whole GPU, as before
    assert gpu_memory_cap(143771, 4) == 35942
    assert gpu_memory_cap(143771, 4, exercise_mb=8000) == 8000
    assert gpu_memory_cap(80000, 4, exercise_mb=30000) == 20000  # never more than the share
    assert gpu_memory_cap(None, 4) is None and gpu_memory_cap(None, 1, exercise_mb=6000) == 6000


def test_each_gpu_gets_n_slots():
    assert packed([0, 2], 1) == (0, 2)
    assert packed([0, 2], 3) == (0, 0, 0, 2, 2, 2)
    with pytest.raises(GpuError, match="slots-per-gpu"):
        packed([0], 0)


def test_serve_packs_the_chosen_gpus(tmp_path, monkeypatch):
    stub_nvidia_smi(tmp_path, monkeypatch, f"printf '{TWO_GPUS}'")
    said = []
    assert gpu_slots(None, None, said.append) == (None, (0, 1))
    assert gpu_slots("1", None, said.append, slots_per_gpu=2) == (None, (1, 1))
    assert "2 worker slot(s), 2 per GPU" in said[-1]
    with pytest.raises(click.BadParameter, match="slots-per-gpu"):
        gpu_slots("0", None, said.append, slots_per_gpu=0)


def test_the_setting_reaches_the_grading_settings_and_the_slots_process(app, monkeypatch):
    from server.grading_settings import grading_settings

    monkeypatch.setenv("WORKSHOP_SLOTS_PER_GPU", "1")  # restored afterwards (share_gpus sets it)
    assert grading_settings(app).slots_per_gpu == 1
    assert share_gpus(app, 4) == 4 and os.environ["WORKSHOP_SLOTS_PER_GPU"] == "4"
    settings = grading_settings(app)
    assert settings.slots_per_gpu == 4 and settings.backend().gpu_shared is True
    assert GradingSettings(sandbox="bwrap").backend().gpu_shared is False


def fake_holders(tmp_path, owners: dict[int, int]):
    proc = tmp_path / "proc"
    for pid, uid in owners.items():
        (proc / str(pid) / "fd").mkdir(parents=True)
        os.symlink(str(tmp_path / "dev" / "nvidia0"), proc / str(pid) / "fd" / "3")
        (proc / str(pid) / "status").write_text(f"Name:\tx\nState:\tS\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    (proc / "self").mkdir(parents=True, exist_ok=True)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "nvidia0").write_text("")
    return proc


def test_only_other_slots_jobs_may_hold_a_shared_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: the holders are the fake /proc's
    proc = fake_holders(tmp_path, {10: 61001, 11: 61002})
    assert other_than_slots([10, 11], 61003, proc) == []
    assert other_than_slots([10, 11], 61001, proc) == [10]  # its own uid: the previous job still holds it
    shared = BwrapSandbox(dev_dir=tmp_path / "dev", proc=proc, gpu_release_seconds=0, gpu_shared=True)
    shared._require_free_gpu(0, 61003)  # the other slots' jobs hold their shares: free
    alone = BwrapSandbox(dev_dir=tmp_path / "dev", proc=proc, gpu_release_seconds=0)
    with pytest.raises(SandboxUnavailable, match="still held by processes"):
        alone._require_free_gpu(0, 61003)  # one slot per GPU: anything holding it blocks the job


def test_the_slots_other_uid_never_blocks_its_gpu(tmp_path, monkeypatch):
    """Warm slots: the sandbox waiting under the slot's other uid is not a job; anything else still blocks."""
    from grader.sandbox.locks import pair_uids, partner_uid, unpair_uids

    monkeypatch.setenv("PATH", str(tmp_path))
    proc = fake_holders(tmp_path, {10: 61005})
    alone = BwrapSandbox(dev_dir=tmp_path / "dev", proc=proc, gpu_release_seconds=0)
    with pytest.raises(SandboxUnavailable, match=r"processes \[10\]"):
        alone._require_free_gpu(0, 61004)  # not yet a pair: 61005 is someone else
    pair_uids(61004, 61005)
    try:
        assert partner_uid(61005) == 61004
        alone._require_free_gpu(0, 61004)  # only its own slot's waiting sandbox holds it: free
        with pytest.raises(SandboxUnavailable, match=r"processes \[10\]"):
            alone._require_free_gpu(0, 61006)  # any other slot is blocked by it
    finally:
        unpair_uids(61004)
    assert partner_uid(61004) is None and partner_uid(61005) is None


def test_a_root_process_on_a_shared_gpu_still_blocks_a_job(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    proc = fake_holders(tmp_path, {10: 0})
    shared = BwrapSandbox(dev_dir=tmp_path / "dev", proc=proc, gpu_release_seconds=0, gpu_shared=True)
    with pytest.raises(SandboxUnavailable):
        shared._require_free_gpu(0, 61003)


def test_a_packed_job_is_told_its_cap(app, data_dir, tmp_path, monkeypatch):
    stub_nvidia_smi(tmp_path, monkeypatch, f"printf '{TWO_GPUS}'")
    exercise = catalog(app)["cnn-from-scratch"]
    dataset = dataset_paths(data_dir, "synthetic")

    def spec(settings, gpu):
        job = _sandbox_job(tmp_path, exercise, dataset, settings, limits_for(exercise), uid=61001, gpu=gpu)
        return job.spec["gpu_memory_mb"]

    assert spec(GradingSettings(slots_per_gpu=2), 1) == 143771 // 2
    assert spec(GradingSettings(), 1) is None and spec(GradingSettings(slots_per_gpu=2), None) is None
    exercise = dataclasses.replace(exercise, gpu_memory_mb=8000)  # exercise.toml's gpu_memory_mb
    assert spec(GradingSettings(slots_per_gpu=2), 1) == 8000 and spec(GradingSettings(), 1) == 8000
    exercise = dataclasses.replace(exercise, gpu_memory_mb=200000)
    assert spec(GradingSettings(slots_per_gpu=2), 1) == 143771 // 2  # never more than the GPU's share


def test_the_harness_caps_tensorflows_view_of_the_gpu_before_using_it(monkeypatch):
    calls = []
    config = types.SimpleNamespace(
        list_physical_devices=lambda kind: ["GPU:0"] if kind == "GPU" else [],
        set_logical_device_configuration=lambda device, configs: calls.append((device, configs)),
        LogicalDeviceConfiguration=lambda memory_limit: ("limit", memory_limit),
    )
    monkeypatch.setitem(sys.modules, "tensorflow", types.SimpleNamespace(config=config))
    harness.cap_gpu_memory(None)
    assert calls == []
    harness.cap_gpu_memory(20000)
    assert calls == [("GPU:0", [("limit", 20000)])]
