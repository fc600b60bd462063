"""`workshop serve` and `workshop worker`: one slot per GPU by default, --gpus chooses, --gpus none runs CPU slots.

nvidia-smi is a stand-in listing two GPUs (or missing); the worker and gunicorn are replaced by recorders, so
only the choice of slots is tested here (tests/jobs run the slots themselves).
"""

from __future__ import annotations

import os
import sys

import pytest

from server.serving.slots import SlotSupervisor

TWO_GPUS = "0, NVIDIA H200, 143771, 580.159.03, 0\\n1, NVIDIA H200, 143771, 580.159.03, 1\\n"


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\nprintf '{TWO_GPUS}'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def no_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvidia-smi, even on a host that has one
    assert not os.path.exists("/usr/bin/nvidia-smi"), "this host has nvidia-smi in /usr/bin"


@pytest.fixture
def worker_calls(monkeypatch):
    """What `workshop worker` asked run_worker for: (slots, gpus) per call."""
    calls = []
    monkeypatch.setattr("server.executor_runtime.run_worker", lambda app, slots, gpus, say: calls.append((slots, gpus)))
    return calls


@pytest.mark.usefixtures("two_gpus")
def test_worker_runs_one_slot_per_gpu_by_default(runner, worker_calls):
    result = runner.invoke(args=["worker"])
    assert result.exit_code == 0, result.output
    assert worker_calls == [(1, (0, 1))]
    assert "2 worker slot(s), one per GPU: GPU 0: NVIDIA H200, 140 GiB, driver 580.159.03; GPU 1:" in result.output


@pytest.mark.usefixtures("two_gpus")
def test_worker_gpus_chooses_and_none_runs_cpu_slots(runner, worker_calls):
    assert runner.invoke(args=["worker", "--gpus", "1"]).exit_code == 0
    assert runner.invoke(args=["worker", "--gpus", "all"]).exit_code == 0
    assert runner.invoke(args=["worker", "--gpus", "none", "--slots", "3"]).exit_code == 0
    assert worker_calls == [(1, (1,)), (1, (0, 1)), (3, ())]


@pytest.mark.usefixtures("two_gpus")
def test_worker_refuses_gpus_this_host_lacks_and_contradicting_flags(runner, worker_calls):
    unknown = runner.invoke(args=["worker", "--gpus", "0,3"])
    assert unknown.exit_code == 2 and "GPU 3 is not on this host: found 0, 1" in unknown.output
    slots = runner.invoke(args=["worker", "--slots", "2"])
    assert slots.exit_code == 2 and "for 2 CPU slot(s) say --gpus none --slots 2" in slots.output
    both = runner.invoke(args=["worker", "--gpus", "0", "--slots", "2"])
    assert both.exit_code == 2 and "--slots is for CPU slots" in both.output
    assert worker_calls == []


@pytest.mark.usefixtures("no_gpus")
def test_without_gpus_the_worker_runs_cpu_slots_as_before(runner, worker_calls):
    assert runner.invoke(args=["worker"]).exit_code == 0
    assert runner.invoke(args=["worker", "--slots", "2"]).exit_code == 0
    refused = runner.invoke(args=["worker", "--gpus", "all"])
    assert refused.exit_code == 2 and "nvidia-smi lists no GPU on this host" in refused.output
    assert worker_calls == [(1, ()), (2, ())]


def test_a_failing_driver_means_cpu_slots_by_default_and_an_error_when_gpus_are_asked_for(
    runner, worker_calls, tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed'; exit 9\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    default = runner.invoke(args=["worker"])
    assert (
        default.exit_code == 0 and "No GPU slots: nvidia-smi failed (exit 9): NVIDIA-SMI has failed" in default.output
    )
    asked = runner.invoke(args=["worker", "--gpus", "0"])
    assert asked.exit_code == 1 and "nvidia-smi failed" in asked.output
    assert worker_calls == [(1, ())]


@pytest.fixture
def serve_calls(monkeypatch):
    """What `workshop serve` built its executor with, and the gunicorn settings it would have run."""
    calls = {}
    monkeypatch.setattr(
        "server.executor_runtime.build_executor",
        lambda app, slots=None, gpus=(): calls.setdefault("executor", (slots, gpus)),
    )
    monkeypatch.setattr("server.serving.web_user_for", lambda app: None)
    monkeypatch.setattr("server.cli.serve._run_gunicorn", lambda app, bind, threads, settings: calls.update(ran=True))
    return calls


@pytest.mark.usefixtures("two_gpus")
def test_serve_runs_one_slot_per_gpu_by_default(runner, serve_calls):
    result = runner.invoke(args=["serve"])
    assert result.exit_code == 0, result.output
    assert serve_calls == {"executor": (None, (0, 1)), "ran": True}


@pytest.mark.usefixtures("two_gpus")
def test_serve_with_no_slots_touches_no_gpu_and_gpus_none_runs_cpu_slots(runner, serve_calls):
    assert runner.invoke(args=["serve", "--slots", "0"]).exit_code == 0  # the web container of docker-compose
    assert "executor" not in serve_calls
    assert runner.invoke(args=["serve", "--gpus", "none", "--slots", "2"]).exit_code == 0
    assert serve_calls["executor"] == (2, ())
    refused = runner.invoke(args=["serve", "--slots", "0", "--gpus", "1"])
    assert refused.exit_code == 2 and "--slots 0 runs no worker slot" in refused.output


@pytest.mark.usefixtures("two_gpus")
def test_serve_refuses_an_unknown_gpu(runner, serve_calls):
    refused = runner.invoke(args=["serve", "--gpus", "2"])
    assert refused.exit_code == 2 and "GPU 2 is not on this host: found 0, 1" in refused.output
    assert serve_calls == {}


def test_a_root_serve_hands_its_gpus_to_the_slots_process():
    assert SlotSupervisor(2, gpus=(0, 2)).command()[1:] == [
        "-m",
        "server.serving",
        "--parent",
        str(os.getpid()),
        "--slots",
        "2",
        "--gpus",
        "0,2",
    ]
    assert "--gpus" not in SlotSupervisor(1).command()
    assert SlotSupervisor(1).command()[0] == sys.executable
