"""Hostile submissions that go after files: labels, other jobs, read-only places, devices, leftovers."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from grader.sandbox import HARNESS

from .common import NO_RESULT

pytestmark = [pytest.mark.sandbox, pytest.mark.hostile]

SEARCH_LABELS = """
import csv
found, seen = [], 0
for folder, dirs, files in os.walk("/"):
    if folder in ("/proc", "/sys"):
        dirs[:] = []
        continue
    for name in files:
        seen += 1
        if name in PARAMS["names"]:
            found.append(os.path.join(folder, name))
with open("/data/test.csv") as handle:
    header = next(csv.reader(handle))
report({
    "found": found,
    "seen": seen,
    "private_dir": os.path.exists(PARAMS["private"]),
    "data_files": sorted(os.listdir("/data")),
    "test_header": header,
})
"""


@pytest.mark.slow  # over 5 s
def test_searching_the_filesystem_for_labels_finds_none(run_hostile, private_dir):
    # the hidden labels, the id map, the test app's database and the default one
    names = ["test_labels.csv", "id_map.csv", "test.db", "workshop.db"]
    # the walk covers every file of /usr and the virtualenv: on a cold page cache that takes a while
    run = run_hostile(SEARCH_LABELS, params={"private": str(private_dir), "names": names}, time_limit=120)
    assert run.facts["seen"] > 1000, "the walk must really have looked"
    assert run.facts["found"] == [] and run.facts["private_dir"] is False
    assert run.facts["test_header"] == ["image_id"]
    assert not any("label" in name or "private" in name for name in run.facts["data_files"])
    assert run.result.error_kind == "runtime_error" and NO_RESULT in run.result.message


OTHER_JOBS = """
marker = "".join(PARAMS["marker_parts"])  # never whole in this file, which is itself searched
hits = []
for folder, dirs, files in os.walk("/"):
    if folder in ("/proc", "/sys", "/dev", "/usr") or folder.startswith((sys.prefix, sys.base_prefix)):
        dirs[:] = []
        continue
    for name in files:
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                if marker.encode() in handle.read(1 << 20):
                    hits.append(os.path.join(folder, name))
        except OSError:
            pass
report({
    "hits": hits,
    "neighbour": os.path.exists(PARAMS["neighbour"]),
    "jobs_root": os.path.exists(PARAMS["jobs_root"]),
    "job": sorted(os.listdir("/job")),
    "code": sorted(os.listdir("/job/code")),
})
"""


def test_other_submissions_are_out_of_reach(run_hostile, tmp_path):
    neighbour = tmp_path / "workshop-jobs" / "job-neighbour" / "code"
    neighbour.mkdir(parents=True)
    marker = hashlib.sha256(b"someone else's submission").hexdigest()
    (neighbour / "submission.py").write_text(f"# {marker}\n")
    run = run_hostile(
        OTHER_JOBS,
        params={"marker_parts": [marker[:32], marker[32:]], "neighbour": str(neighbour), "jobs_root": str(tmp_path)},
        time_limit=60,  # it reads every file outside /usr and the interpreter
    )
    assert run.facts["hits"] == [] and run.facts["neighbour"] is False and run.facts["jobs_root"] is False
    assert run.facts["job"] == ["code", "spec.json"] and run.facts["code"] == ["submission.py"]


WRITE_EVERYWHERE = """
def write(path, mode="w"):
    def action():
        with open(path, mode) as handle:
            handle.write("import os  # planted\\n")
    return action

site = [p for p in sys.path if p.endswith("site-packages")][0]
targets = {
    "code": "/job/code/submission.py",
    "spec": "/job/spec.json",
    "harness": "/opt/workshop/harness.py",
    "data": "/data/test.csv",
    "usr": "/usr/lib/evil",
    "venv_pth": os.path.join(site, "zz-planted.pth"),
    "stdlib": os.path.join(sys.base_prefix, "lib", "python3.11", "os.py"),
    "passwd": "/etc/passwd",
    "root": "/planted",
    "proc_sys": "/proc/sys/kernel/hostname",
    "proc_sys_vm": "/proc/sys/vm/drop_caches",
}
facts = {name: attempt(write(path, "a")) for name, path in targets.items()}
facts["tmp"] = attempt(write("/tmp/fine"))
facts["chmod_code"] = attempt(lambda: os.chmod("/job/code/submission.py", 0o777))
facts["site"] = site
report(facts)
"""


def test_writing_to_read_only_places_fails(run_hostile):
    run = run_hostile(WRITE_EVERYWHERE)
    facts = run.facts
    assert facts.pop("tmp") == "allowed"
    site = Path(facts.pop("site"))
    assert all(value in ("EROFS", "EACCES", "EPERM", "ENOENT") for value in facts.values()), facts
    assert not (site / "zz-planted.pth").exists()
    assert (
        "planted" not in HARNESS.read_text()
        and "planted" not in Path(sys.base_prefix, "lib", "python3.11", "os.py").read_text()
    )


HARDLINKS = """
report({
    "data_to_out": attempt(lambda: os.link("/data/test.csv", "/out/predictions.csv")),
    "harness_to_tmp": attempt(lambda: os.link("/opt/workshop/harness.py", "/tmp/harness.py")),
    "python_to_tmp": attempt(lambda: os.link(os.path.realpath(sys.executable), "/tmp/python")),
    "passwd_to_out": attempt(lambda: os.link("/etc/passwd", "/out/passwd")),
})
"""


def test_hardlinks_out_of_the_writable_places_fail(run_hostile):
    run = run_hostile(HARDLINKS)
    # every writable place is a file system of its own; protected_hardlinks refuses root's files first
    assert run.facts["data_to_out"] == "EXDEV" and run.facts["harness_to_tmp"] == "EXDEV"
    assert set(run.facts.values()) <= {"EXDEV", "EACCES"}, run.facts


DEVICES = """
import stat
report({
    "dev": sorted(os.listdir("/dev")),
    "mknod_disk": attempt(lambda: os.mknod("/tmp/vda", stat.S_IFBLK | 0o600, os.makedev(253, 0))),
    "mknod_mem": attempt(lambda: os.mknod("/tmp/mem", stat.S_IFCHR | 0o600, os.makedev(1, 1))),
    "sys": os.path.exists("/sys"),
    "kmsg": attempt(lambda: open("/dev/kmsg").read(1)),
})
"""


def test_only_harmless_devices_exist(run_hostile):
    run = run_hostile(DEVICES)
    harmless = {"core", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty"}
    assert set(run.facts["dev"]) <= harmless | {"urandom", "zero"}
    assert not any(name.startswith(("nvidia", "sd", "vd", "nvme", "mem", "kvm")) for name in run.facts["dev"])
    assert run.facts["mknod_disk"] == "EPERM" and run.facts["mknod_mem"] == "EPERM"
    assert run.facts["sys"] is False and run.facts["kmsg"] == "ENOENT"


LEAVE_BEHIND = """
for path in ("/tmp/left-behind", "/dev/shm/left-behind", "/out/left-behind", "/tmp/.keras/left-behind"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("from the previous job")
report({})
"""

LOOK_FOR_LEFTOVERS = """
paths = ("/tmp/left-behind", "/dev/shm/left-behind", "/out/left-behind", "/tmp/.keras/left-behind")
found = [path for path in paths if os.path.exists(path)]
report({"found": found, "shm": os.listdir("/dev/shm"), "out": os.listdir("/out")})
"""


def test_files_left_for_the_next_job_are_gone(run_hostile, tmp_path):
    run_hostile(LEAVE_BEHIND)
    run = run_hostile(LOOK_FOR_LEFTOVERS)  # same uid, same slot: the next participant's job
    assert run.facts == {"found": [], "shm": [], "out": []}
    assert not list((tmp_path / "workshop-jobs").iterdir()), "job folders (and their mounts) are removed"
