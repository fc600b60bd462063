"""Hostile submissions that try to exhaust the machine: processes, memory, disk, inodes, logs, time, files."""

from __future__ import annotations

import pytest

from .common import NO_RESULT

pytestmark = [pytest.mark.sandbox, pytest.mark.hostile]

FORK_BOMB = """
import time
def bomb():
    while True:
        if os.fork() == 0:  # every child forks on too: the real thing
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.05)
outcome = attempt(bomb)
time.sleep(1)  # let the others fill every slot; none of them exits, so /proc holds still
report({"outcome": outcome, "processes": sum(1 for name in os.listdir("/proc") if name.isdigit())})
"""


def test_fork_bomb_is_capped_and_swept(run_hostile):
    run = run_hostile(FORK_BOMB, time_limit=20)
    assert run.facts["outcome"] == "EAGAIN"
    assert 400 < run.facts["processes"] <= 512  # it really forked, and hit pids.max (and RLIMIT_NPROC)
    assert run.result.error_kind == "runtime_error" and NO_RESULT in run.result.message


MEMORY_BOMB = """
hoard = []
while True:
    hoard.append(b"x" * (32 * 1024 * 1024))  # filled, so every page is really used
"""


def test_memory_bomb_is_killed_as_out_of_memory(run_hostile):
    run = run_hostile(MEMORY_BOMB, memory_mb=320)
    assert run.result.error_kind == "out_of_memory", (run.result.message, run.result.log[-500:])
    assert run.result.message == "the job used more memory than allowed"


MEMORY_IN_A_CHILD = """
import signal
child = os.fork()
if child == 0:
    hoard = []
    while True:
        hoard.append(b"x" * (32 * 1024 * 1024))
_, status = os.waitpid(child, 0)
report({"child": signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)})
"""


def test_memory_bomb_in_a_child_process_is_killed(run_hostile):
    run = run_hostile(MEMORY_IN_A_CHILD, memory_mb=320)
    assert run.facts["child"] == "SIGKILL"  # the cgroup's OOM killer, not a MemoryError
    assert run.result.error_kind == "out_of_memory"


FILL = """
import time
path = PARAMS["path"]
written, chunk = 0, b"x" * (1024 * 1024)
started = time.monotonic()
def fill():
    global written
    with open(path, "wb") as handle:
        while True:
            handle.write(chunk)
            handle.flush()
            written += len(chunk)
outcome = attempt(fill)
size = os.statvfs(os.path.dirname(path))
report({"outcome": outcome, "written_mb": written / 2**20, "df_mb": size.f_blocks * size.f_frsize / 2**20})
"""


@pytest.mark.parametrize(
    ("path", "cap_mb"),
    [("/tmp/fill", 128), ("/dev/shm/fill", 64), ("/out/predictions.csv", 64), ("/tmp/.keras/fill", 128)],
)
def test_filling_a_writable_place_stops_at_its_cap(run_hostile, path, cap_mb):
    # memory limit 512 MB: /tmp gets a quarter (128 MB), /dev/shm an eighth (64 MB), the output 64 MB
    code = FILL if ".keras" not in path else 'os.makedirs("/tmp/.keras", exist_ok=True)\n' + FILL
    run = run_hostile(code, params={"path": path}, memory_mb=512)
    assert run.facts["outcome"] == "ENOSPC"
    assert run.facts["df_mb"] == pytest.approx(cap_mb, rel=0.02) and run.facts["written_mb"] <= cap_mb
    assert run.result.error_kind == "runtime_error"


ONE_HUGE_FILE = FILL


def test_one_file_larger_than_the_file_size_limit_fails(run_hostile):
    run = run_hostile(ONE_HUGE_FILE, params={"path": "/tmp/huge"})  # 4 GB memory: 1 GB /tmp, files up to 512 MB
    assert run.facts["outcome"] == "EFBIG" and run.facts["written_mb"] == 512


INODES = """
count = 0
def create():
    global count
    while True:
        open(f"/tmp/f{count}", "w").close()
        count += 1
report({"outcome": attempt(create), "count": count})
"""


def test_inode_exhaustion_stops_at_the_cap(run_hostile):
    run = run_hostile(INODES)
    assert run.facts["outcome"] == "ENOSPC" and 16000 < run.facts["count"] < 16384


LOG_FLOOD = """
os.write(1, b"FIRST-LINE\\n")
block = b"spam " * 200_000 + b"\\n"
for _ in range(100):
    os.write(1, block)
report({"flooded_mb": 100 * len(block) / 2**20})
"""


def test_log_flood_is_capped(run_hostile):
    run = run_hostile(LOG_FLOOD)
    assert run.facts["flooded_mb"] > 90  # the FACTS line is the last one, in the kept tail
    assert run.result.log.startswith("FIRST-LINE") and "bytes of output skipped" in run.result.log
    assert len(run.result.log) < 100_000


SLEEP = """
import time
time.sleep(3600)
"""


@pytest.mark.slow  # over 5 s
def test_sleeping_past_the_limit_times_out(run_hostile):
    run = run_hostile(SLEEP, time_limit=1)
    assert run.result.error_kind == "timeout" and run.result.message.startswith("stopped after")


SPIN = """
import signal, threading
for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGXCPU"):
    signal.signal(getattr(signal, name), signal.SIG_IGN)
def spin():
    while True:
        pass
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
spin()
"""


@pytest.mark.slow  # over 5 s
def test_cpu_spin_ignoring_signals_times_out(run_hostile):
    run = run_hostile(SPIN, time_limit=1)
    assert run.result.error_kind == "timeout"


FDS = """
import socket
opened = []
def exhaust():
    while True:
        opened.append(os.open("/dev/null", os.O_RDONLY))
outcome = attempt(exhaust)
for fd in opened:
    os.close(fd)
report({"outcome": outcome, "count": len(opened)})
"""


def test_file_descriptor_exhaustion_stops_at_the_limit(run_hostile):
    run = run_hostile(FDS)
    assert run.facts["outcome"] == "EMFILE" and 4000 < run.facts["count"] < 4096


RAISE_RLIMITS = """
import resource
facts = {}
for name in ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_CORE"):
    limit = getattr(resource, name)
    soft, hard = resource.getrlimit(limit)
    facts[name] = [hard, attempt(lambda: resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))]
report(facts)
"""


def test_raising_rlimits_is_refused(run_hostile):
    run = run_hostile(RAISE_RLIMITS)
    assert {outcome for _hard, outcome in run.facts.values()} == {"ValueError"}  # "not allowed to raise maximum"
    assert run.facts["RLIMIT_NOFILE"][0] == 4096 and run.facts["RLIMIT_NPROC"][0] == 512
    assert run.facts["RLIMIT_CORE"][0] == 0 and run.facts["RLIMIT_FSIZE"][0] == 512 * 2**20
