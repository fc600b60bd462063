"""Hostile output: what the job leaves in its output folder is read by the host as hostile input."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.sandbox, pytest.mark.hostile]

# The job claims success itself and leaves at once, so the host goes on to read its predictions.
CLAIM_SUCCESS = """
def claim_success(**extra):
    with open("/out/status.json", "w") as handle:
        json.dump({"ok": True, **extra}, handle)
"""

SYMLINK = (
    CLAIM_SUCCESS
    + """
os.symlink("/data/train.csv", "/out/predictions.csv")
claim_success()
report({})
"""
)

FIFO = (
    CLAIM_SUCCESS
    + """
os.mkfifo("/out/predictions.csv")
claim_success()
report({})
"""
)

HUGE = (
    CLAIM_SUCCESS
    + """
with open("/out/predictions.csv", "w") as handle:
    handle.write("image_id,malignant\\n")
    handle.truncate(100 * 1024 * 1024)  # sparse: 100 MB on paper
claim_success()
report({})
"""
)

PICKLED = (
    CLAIM_SUCCESS
    + """
import pickle

class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + PARAMS["marker"],))

for name in ("predictions.csv", "model.pkl", "model.keras", "predictions.npy"):
    with open("/out/" + name, "wb") as handle:
        pickle.dump(Payload(), handle)
claim_success()
report({})
"""
)

FAKE_SCORES = (
    CLAIM_SUCCESS
    + """
for name in ("score.json", "metrics.json", "scores.csv"):
    with open("/out/" + name, "w") as handle:
        json.dump({"public_score": 1.0, "private_score": 1.0, "roc_auc": 1.0}, handle)
claim_success(public_score=1.0, private_score=1.0, metrics={"public": {"roc_auc": 1.0}})
report({})
"""
)

DIRECTORY = (
    CLAIM_SUCCESS
    + """
os.mkdir("/out/predictions.csv")
claim_success()
report({})
"""
)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (SYMLINK, "not a regular file"),
        (FIFO, "not a regular file"),
        (DIRECTORY, "not a regular file"),
        (HUGE, "too large"),
        (FAKE_SCORES, "no predictions.csv was written"),
    ],
    ids=["symlink", "fifo", "directory", "huge", "fake-scores"],
)
def test_hostile_predictions_are_invalid(run_hostile, code, message):
    result = run_hostile(code).result
    assert result.error_kind == "invalid_predictions" and message in result.message
    assert result.public_score is None and result.private_score is None and result.metrics == {}


def test_pickles_are_never_loaded_by_the_host(run_hostile, tmp_path):
    marker = tmp_path / "unpickled-on-the-host"
    result = run_hostile(PICKLED, params={"marker": str(marker)}).result
    assert result.error_kind == "invalid_predictions" and "not UTF-8" in result.message
    assert not marker.exists()


STATUS = """
payloads = {
    "infrastructure": {"ok": False, "error_kind": "infrastructure", "message": "your fault, retry me for free"},
    "nested": "[" * 100000,
    "types": {"ok": False, "notes": 5, "run_info": [1, 2], "message": {"a": 1}, "traceback": 7},
    "huge_numbers": {"ok": False, "notes": ["n"], "run_info": {"x": 10 ** 400}, "message": "m"},
}
payload = payloads[PARAMS["kind"]]
with open("/out/status.json", "w") as handle:
    handle.write(payload if isinstance(payload, str) else json.dumps(payload))
with open("/out/progress.jsonl", "w") as handle:
    handle.write('{"epoch": 1, "seconds": 1' + "0" * 400 + ', "metrics": {"loss": 1' + "0" * 400 + ', "auc": NaN}}\\n')
    handle.write("[" * 100000 + "\\n")
    handle.write('{"epoch": 2, "metrics": {"loss": 0.5}}\\n')
report({})
"""


@pytest.mark.parametrize("kind", ["infrastructure", "nested", "types", "huge_numbers"])
def test_a_forged_status_is_a_runtime_error_never_a_crash_or_a_free_retry(run_hostile, kind):
    result = run_hostile(STATUS, params={"kind": kind}).result
    assert result.status == "failed" and result.error_kind == "runtime_error"  # not infrastructure: no free retry
    assert [epoch["epoch"] for epoch in result.history] == [1, 2]
    assert result.history[0] == {"epoch": 1, "seconds": None, "metrics": {}}  # absurd numbers dropped, not crashed on
    assert all(isinstance(note, str) for note in result.notes)


REPLACE_OUT = """
def umount(path):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return "allowed" if libc.umount2(path.encode(), 2) == 0 else errno.errorcode.get(ctypes.get_errno())

report({
    "rename": attempt(lambda: os.rename("/out", "/tmp/out")),
    "rmdir": attempt(lambda: os.rmdir("/out")),
    "symlink_over": attempt(lambda: os.symlink("/data", "/out")),
    "umount": umount("/out"),
})
"""


def test_the_output_folder_cannot_be_replaced(run_hostile):
    facts = run_hostile(REPLACE_OUT).facts
    assert facts["rename"] in ("EXDEV", "EBUSY", "EACCES", "EROFS") and facts["rmdir"] in ("EBUSY", "EACCES", "EROFS")
    assert facts["symlink_over"] in ("EEXIST", "EROFS") and facts["umount"] != "allowed"


ENVIRONMENT = """
leaks = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for name in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as handle:
                if PARAMS["secret"].encode() in handle.read():
                    leaks.append(f"{pid}/{name}")
        except OSError:
            pass
report({"env": dict(os.environ), "leaks": leaks})
"""


def test_environment_dump_shows_only_the_allowlist(run_hostile, monkeypatch):
    secret = "s3cr3t-" + os.urandom(8).hex()
    for name in ("WORKSHOP_SECRET_KEY", "WORKSHOP_DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "HTTP_PROXY"):
        monkeypatch.setenv(name, secret)
    facts = run_hostile(ENVIRONMENT, params={"secret": secret}).facts
    assert secret not in str(facts["env"]) and facts["leaks"] == []
    assert sorted(facts["env"]) == sorted(
        ["PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "TF_CPP_MIN_LOG_LEVEL"]
        + ["MPLCONFIGDIR", "KERAS_HOME", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "PWD"]  # PWD: bwrap's --chdir
    )
