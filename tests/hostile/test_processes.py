"""Hostile submissions that try to outlive the job, signal others, or look at other processes."""

from __future__ import annotations

import os

import pytest

from grader.sandbox import processes_of_uid

from .common import NO_RESULT, UID

pytestmark = [pytest.mark.sandbox, pytest.mark.hostile]

DAEMON = """
import signal, time
if os.fork() == 0:
    os.setsid()  # a new session: out of the job's process group
    if os.fork() == 0:
        for name in ("SIGTERM", "SIGHUP", "SIGINT"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        time.sleep(3600)  # waiting to read the next participant's submission
    os._exit(0)
time.sleep(0.5)
report({"processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())})
"""


def test_a_daemon_does_not_outlive_the_job(run_hostile):
    run = run_hostile(DAEMON)
    assert len(run.facts["processes"]) >= 3  # the daemon was running when the job ended
    assert run.result.error_kind == "runtime_error" and NO_RESULT in run.result.message  # ended, not timed out
    assert processes_of_uid(UID) == []  # (the fixture checks this for every run; here it is the point)


NOHUP = """
import subprocess
subprocess.Popen(["nohup", "setsid", "sleep", "3600"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
import time
time.sleep(0.3)
def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read()
report({"sleepers": [pid for pid in os.listdir("/proc") if pid.isdigit() and b"sleep" in cmdline(pid)]})
"""


def test_nohup_setsid_children_are_swept(run_hostile):
    run = run_hostile(NOHUP)
    assert run.facts["sleepers"], "the escapee was started"
    assert processes_of_uid(UID) == []


SIGNALS = """
import signal
report({
    "ppid": os.getppid(),
    "kill_init": attempt(lambda: os.kill(1, signal.SIGKILL)),
    "kill_parent": attempt(lambda: os.kill(os.getppid(), signal.SIGTERM)),
    "kill_everyone": attempt(lambda: os.kill(-1, signal.SIGKILL)),
    "kill_host_worker": attempt(lambda: os.kill(PARAMS["host_pid"], signal.SIGKILL)),
    "killpg_host": attempt(lambda: os.killpg(PARAMS["host_pgid"], signal.SIGKILL)),
})
"""


def test_signalling_the_parent_and_the_host_fails(run_hostile):
    run = run_hostile(SIGNALS, params={"host_pid": os.getpid(), "host_pgid": os.getpgid(0)})
    facts = run.facts
    assert facts["ppid"] == 1 and facts["kill_init"] == "EPERM" and facts["kill_parent"] == "EPERM"
    assert facts["kill_everyone"] == "ESRCH"  # nothing else of its own to kill, nothing else visible
    assert facts["kill_host_worker"] == "ESRCH" and facts["killpg_host"] == "ESRCH"
    assert run.result.error_kind == "runtime_error"  # and this test process is, evidently, alive


PROC = """
def read(path):
    def action():
        with open(path, "rb") as handle:
            handle.read()
    return action

def write(path, text):
    def action():
        with open(path, "w") as handle:
            handle.write(text)
    return action
def ptrace_attach(pid):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
        return "allowed"
    return errno.errorcode.get(ctypes.get_errno())

with open("/proc/1/cmdline", "rb") as handle:
    init = handle.read().replace(b"\\0", b" ").decode()
report({
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "init_cmdline": init,
    "init_environ": attempt(read("/proc/1/environ")),
    "init_root": attempt(lambda: os.listdir("/proc/1/root")),
    "init_mem": attempt(read("/proc/1/mem")),
    "ptrace_init": ptrace_attach(1),
    "host_pid_visible": os.path.exists(f"/proc/{PARAMS['host_pid']}"),
    "lower_oom_score": attempt(write("/proc/self/oom_score_adj", "-1000")),
    "raise_oom_score": attempt(write("/proc/self/oom_score_adj", "1000")),
    "sysrq": attempt(write("/proc/sysrq-trigger", "b")),
    "core_pattern": attempt(write("/proc/sys/kernel/core_pattern", "|/tmp/x")),
})
"""


def test_proc_shows_only_the_job_and_refuses_writes(run_hostile, data_dir):
    run = run_hostile(PROC, params={"host_pid": os.getpid()})
    facts = run.facts
    assert facts["pids"] == [1, 2] and facts["host_pid_visible"] is False
    assert str(data_dir) not in facts["init_cmdline"] and "workshop-jobs" not in facts["init_cmdline"]
    assert facts["init_environ"] == "EACCES" and facts["init_root"] == "EACCES" and facts["init_mem"] == "EACCES"
    assert facts["ptrace_init"] == "EPERM"
    assert facts["lower_oom_score"] == "EACCES" and facts["raise_oom_score"] == "allowed"  # it may only hurt itself
    assert facts["sysrq"] in ("EACCES", "ENOENT", "EROFS") and facts["core_pattern"] in ("EACCES", "EROFS")
