"""Grade one submission: syntax check, sandboxed run, hostile-output parsing, scoring. Used by workers and the CLI."""

from __future__ import annotations

import ast
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from grader.data import CLASS_NAMES, DatasetPaths, read_test_ids, read_test_labels
from grader.exercises import Exercise
from grader.sandbox import (
    BASE_UID,
    Limits,
    Sandbox,
    SandboxJob,
    SandboxResult,
    SandboxUnavailable,
    get_sandbox,
)
from grader.sandbox.gpus import GpuError, gpu_memory_cap, list_gpus
from grader.sandbox.warm import WarmLost, WarmSandbox
from grader.scoring import (
    InvalidPredictions,
    leaderboard_scores,
    read_predictions,
    read_progress,
    read_status,
    score_predictions,
)
from grader.storable import optional_text, storable_json, storable_text
from grader.warm_pool import POOL, empty_job_dir, warm_plan, warm_sandbox
from grader.weights import exercise_weights

ERROR_KINDS = (
    "syntax_error",
    "import_error",
    "runtime_error",
    "timeout",
    "out_of_memory",
    "invalid_predictions",
    "contract",
    "infrastructure",
)
# kinds the harness may report about itself; anything else it claims is ignored
HARNESS_KINDS = ("import_error", "runtime_error", "out_of_memory", "invalid_predictions", "contract")
MAX_CODE_BYTES = 256 * 1024
# seconds the harness keeps free at the end for predicting the test images
PREDICT_RESERVE_SECONDS = 8
# the harness starts, imports TensorFlow and writes status; the host allows this on top of the limit
STARTUP_GRACE_SECONDS = 15
# what is kept of a job's output (characters): text beyond these is cut before it reaches the database
MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_CHARS = 20000
MAX_LOG_CHARS = 100_000  # above the sandbox's own capture (16 KiB head + 64 KiB tail)
MAX_NOTE_CHARS = 300
MAX_NOTES = 20
MAX_HISTORY_RECORDS = 1000


@dataclass(frozen=True)
class GradingSettings:
    """Where and how submissions are graded: the sandbox backend and its options, the job and weights folders.

    The server builds it once from its configuration (``server.grading_settings``), so the workers,
    ``workshop grade`` and ``workshop exercises check`` all grade the same way; tests build their own.
    """

    sandbox: str = "bwrap"
    sandbox_options: Mapping[str, object] = field(default_factory=dict)  # e.g. the Docker image
    work_dir: Path | None = None  # job folders go in WORK_DIR/workshop-jobs (the system's temporary folder if None)
    weights_dir: Path | None = None  # KERAS_HOME/models: the pretrained weights exercises may load
    # warm slots (grader/warm_pool.py): a job runs in a sandbox started before it arrived (bwrap only)
    warm_slots: bool = field(default_factory=lambda: warm_slots_default())
    warm_max_seconds: float = 600  # a warm sandbox that waited longer is replaced
    slots_per_gpu: int = 1  # --slots-per-gpu: jobs sharing one GPU, each with a memory cap

    def __post_init__(self) -> None:
        object.__setattr__(self, "sandbox_options", MappingProxyType(dict(self.sandbox_options)))

    @property
    def jobs_dir(self) -> Path:
        return Path(self.work_dir or tempfile.gettempdir()) / "workshop-jobs"

    def backend(self) -> Sandbox:
        """The sandbox backend these settings name, constructed with its options."""
        options = dict(self.sandbox_options)
        if self.sandbox == "bwrap" and self.slots_per_gpu > 1:
            options["gpu_shared"] = True  # the other slots of a GPU may hold it when a job starts
        return get_sandbox(self.sandbox, **options)


def warm_slots_default(environ: Mapping[str, str] = os.environ) -> bool:
    """WORKSHOP_WARM_SLOTS: 1/true/on or 0/false/off; unset: off."""
    return environ.get("WORKSHOP_WARM_SLOTS", "0").strip().lower() in ("1", "true", "on", "yes")


@dataclass(frozen=True)
class GradeResult:
    """Everything a grading run produces, in plain data (what the worker records); changed copies, never changes."""

    status: str
    error_kind: str | None = None
    message: str | None = None
    traceback: str | None = None
    public_score: float | None = None
    private_score: float | None = None
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    log: str = ""
    notes: list = field(default_factory=list)
    run_info: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def storable(self) -> GradeResult:
        """A copy that any database stores: clean, bounded text and JSON (what the sandbox wrote is hostile)."""
        return GradeResult(
            status=self.status,
            error_kind=self.error_kind if self.error_kind in ERROR_KINDS else None,
            message=optional_text(self.message, MAX_MESSAGE_CHARS),
            traceback=optional_text(self.traceback, MAX_TRACEBACK_CHARS, keep="tail"),
            public_score=_finite_or_none(self.public_score),
            private_score=_finite_or_none(self.private_score),
            metrics=storable_json(self.metrics or {}, max_items=200),
            history=storable_json((self.history or [])[-MAX_HISTORY_RECORDS:]),
            log=storable_text(self.log or "", MAX_LOG_CHARS, keep="ends"),
            notes=[storable_text(note, MAX_NOTE_CHARS) for note in (self.notes or [])[:MAX_NOTES]],
            run_info=storable_json(self.run_info or {}, max_items=40),
            seconds=_finite_or_none(self.seconds) or 0.0,
        )


def _finite_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@dataclass(frozen=True)
class Progress:
    """A live snapshot while the job runs."""

    log: str
    history: list

    def storable(self) -> Progress:
        return Progress(
            log=storable_text(self.log or "", MAX_LOG_CHARS, keep="ends"),
            history=storable_json((self.history or [])[-MAX_HISTORY_RECORDS:]),
        )


class SubmissionRejected(Exception):
    """The code cannot be queued (too large, not UTF-8, syntax error); costs the participant nothing."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def check_source(code: bytes | str) -> str:
    """Size, UTF-8 and syntax checks done before anything is queued; returns the code as text."""
    try:
        raw = code.encode("utf-8") if isinstance(code, str) else code
    except UnicodeEncodeError as error:  # a lone surrogate, e.g. from a JSON "\ud800" escape
        raise SubmissionRejected(
            "encoding", f"the code is not valid Unicode text (a lone surrogate at character {error.start})"
        ) from None
    if len(raw) > MAX_CODE_BYTES:
        raise SubmissionRejected("too_large", f"the code is {len(raw)} bytes; at most {MAX_CODE_BYTES} are accepted")
    if not raw.strip():
        raise SubmissionRejected("empty", "the code is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SubmissionRejected("encoding", f"the file is not UTF-8 text (byte {error.start})") from None
    if "\x00" in text:
        raise SubmissionRejected("encoding", "the file contains NUL bytes; is it really Python source?")
    try:
        ast.parse(text, filename="submission.py")
    except SyntaxError as error:
        where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
        raise SubmissionRejected("syntax_error", f"SyntaxError at {where}: {error.msg}") from None
    except (MemoryError, RecursionError, ValueError):  # the parser gave up: absurd nesting or chains
        raise SubmissionRejected(
            "too_complex", "the code is nested too deeply for Python to read it; split long expressions up"
        ) from None
    return text


def limits_for(exercise: Exercise, time_limit: float | None = None) -> Limits:
    """The job's limits; /tmp and /dev/shm are capped below the memory limit they are charged to."""
    seconds = float(time_limit if time_limit is not None else exercise.time_limit)
    memory = exercise.memory_limit_mb
    return Limits(
        wall_seconds=seconds + STARTUP_GRACE_SECONDS,
        memory_mb=memory,
        tmp_mb=max(16, min(1024, memory // 4)),
        shm_mb=max(16, min(256, memory // 8)),
    )


def _prepare_job_dir(work_dir: Path, code: str, uid: int) -> Path:
    """A fresh job folder: code (read-only in the sandbox) and an output folder the job's uid owns."""
    job_dir = empty_job_dir(work_dir, uid)
    (job_dir / "code" / "submission.py").write_text(code, encoding="utf-8")
    os.chmod(job_dir / "code" / "submission.py", 0o644)
    return job_dir


def grade(
    code: str,
    exercise: Exercise,
    dataset: DatasetPaths,
    settings: GradingSettings,
    *,
    time_limit: float | None = None,
    uid: int = BASE_UID,
    on_progress: Callable[[Progress], None] | None = None,
    gpu: int | None = None,
    keep_predictions: Path | None = None,
    seed: int | None = None,
) -> GradeResult:
    """Run one submission through the sandbox and score it; never raises for a participant's mistake.

    With ``keep_predictions``, the validated predictions of a scored job are written there (so a rescore
    needs no training). ``seed`` reaches the harness as ``data.seed`` (None: the harness picks one).
    """
    started = time.monotonic()
    try:
        code = check_source(code)
    except SubmissionRejected as error:
        kind = "syntax_error" if error.kind == "syntax_error" else "runtime_error"
        return GradeResult(status="failed", error_kind=kind, message=str(error))
    backend = settings.backend()
    limits = limits_for(exercise, time_limit)

    def job_in(job_dir: Path) -> SandboxJob:
        return _sandbox_job(job_dir, exercise, dataset, settings, limits, uid=uid, gpu=gpu, seed=seed)

    def attempt(warm: WarmSandbox | None) -> GradeResult | None:
        job_dir = warm.job_dir if warm is not None else _prepare_job_dir(settings.jobs_dir, code, uid)
        job = job_in(job_dir)
        try:
            run = _run_in(backend, warm, job, code, on_progress)
            if isinstance(run, SandboxResult):
                return _interpret(run, job.out_dir, dataset, keep_predictions, metric=exercise.metric)
            return run  # the sandbox refused (infrastructure), or None: the warm sandbox was lost first
        finally:
            backend.release(job)  # e.g. unmount the output folder, now that the host has read it
            shutil.rmtree(job_dir, ignore_errors=True)

    warm = warm_sandbox(POOL, settings, backend, limits, dataset.public, uid, gpu)
    result = (attempt(warm) if warm is not None else None) or attempt(None)  # a lost warm sandbox: cold
    return replace(result, seconds=round(time.monotonic() - started, 3)).storable()


def _run_in(
    backend: Sandbox,
    warm: WarmSandbox | None,
    job: SandboxJob,
    code: str,
    on_progress: Callable[[Progress], None] | None,
) -> SandboxResult | GradeResult | None:
    """Run ``job`` (cold, or in the warm sandbox started for it); None when the warm sandbox was lost first."""

    def poll(log: str) -> None:
        if on_progress is not None:
            on_progress(Progress(log=log, history=read_progress(job.out_dir)))

    try:
        return warm.run(job, code, on_poll=poll) if warm is not None else backend.run(job, on_poll=poll)
    except WarmLost:
        return None
    except SandboxUnavailable as error:  # our side (e.g. no cgroup for the job): retried, never charged
        return GradeResult(status="failed", error_kind="infrastructure", message=f"the sandbox refused: {error}")


def plan_warm_slot(exercise: Exercise, dataset: DatasetPaths, settings: GradingSettings, uid: int, gpu=None) -> bool:
    """Before a slot's first job: plan its warm sandbox as for a job of ``exercise`` on ``dataset``, so that the
    idle slot starts it at once (its first job need not run cold). False where that job would run cold."""
    if not dataset.public.is_dir():
        return False
    plan = warm_plan(settings, settings.backend(), limits_for(exercise), dataset.public, uid, gpu)
    return plan is not None and POOL.plan(plan)


def _sandbox_job(
    job_dir: Path,
    exercise: Exercise,
    dataset: DatasetPaths,
    settings: GradingSettings,
    limits: Limits,
    *,
    uid: int,
    gpu: int | None,
    seed: int | None = None,
) -> SandboxJob:
    """What the sandbox runs: the job folder's code and output, the public data, and the harness's spec."""
    spec = {
        "image_size": exercise.image_size,
        "time_limit": limits.wall_seconds - STARTUP_GRACE_SECONDS,
        "predict_reserve_seconds": PREDICT_RESERVE_SECONDS,
        "class_names": list(CLASS_NAMES),
        "module": "submission",
        "seed": seed,
        "allowed_weights": [item.as_spec() for item in exercise_weights(exercise)],
        "gpu_memory_mb": _gpu_memory_mb(exercise, settings, gpu),
    }
    code_dir, out_dir = job_dir / "code", job_dir / "out"
    return SandboxJob(
        code_dir, out_dir, dataset.public, spec, limits, uid=uid, gpu=gpu, weights_dir=settings.weights_dir
    )


def _gpu_memory_mb(exercise: Exercise, settings: GradingSettings, gpu: int | None) -> int | None:
    """The job's GPU memory cap: the exercise's ``gpu_memory_mb``, or its GPU's share; None on a whole GPU."""
    wanted = exercise.gpu_memory_mb
    if gpu is None or (settings.slots_per_gpu <= 1 and not wanted):
        return None
    try:
        memory = next((found.memory_mib for found in list_gpus() if found.index == gpu), None)
    except GpuError:
        memory = None
    return gpu_memory_cap(memory, settings.slots_per_gpu, wanted)


def _interpret(
    run: SandboxResult, out_dir: Path, dataset: DatasetPaths, keep: Path | None = None, *, metric: str = "roc_auc"
) -> GradeResult:
    """Turn what the sandbox left behind into a verdict; only the host's own scoring produces scores (and figures).

    ``public_score``/``private_score`` are the exercise's leaderboard ``metric`` of each partition.
    """
    status = read_status(out_dir)
    history = read_progress(out_dir)
    notes = [str(note)[:300] for note in status.get("notes", [])[:10] if isinstance(note, str)] + run.notes
    run_info = status.get("run_info") if isinstance(status.get("run_info"), dict) else {}
    base = {"log": run.log, "history": history, "notes": notes, "run_info": _clean_info(run_info)}
    if run.timed_out:
        limit = round(run.seconds)
        return GradeResult(status="failed", error_kind="timeout", message=f"stopped after {limit} s", **base)
    if run.out_of_memory:
        return GradeResult(
            status="failed",
            error_kind="out_of_memory",
            message="the job used more memory than allowed",
            **base,
        )
    if not status.get("ok"):
        kind = status.get("error_kind") if status.get("error_kind") in HARNESS_KINDS else "runtime_error"
        message = str(status.get("message") or f"the job ended with exit code {run.exit_code} and no result")
        trace = status.get("traceback") if isinstance(status.get("traceback"), str) else None
        return GradeResult(status="failed", error_kind=kind, message=message[:2000], traceback=trace, **base)
    expected_ids = read_test_ids(dataset)  # the host's own data: if this fails, it is our fault (infrastructure)
    try:
        predictions = read_predictions(out_dir, expected_ids)
    except InvalidPredictions as error:
        return GradeResult(status="failed", error_kind="invalid_predictions", message=str(error), **base)
    metrics = score_predictions(predictions, read_test_labels(dataset))
    if keep is not None:
        write_predictions(predictions, keep)
    public_score, private_score = leaderboard_scores(metrics, metric)
    return GradeResult(status="done", public_score=public_score, private_score=private_score, metrics=metrics, **base)


def _clean_info(info: dict) -> dict:
    return {str(key)[:40]: str(value)[:300] for key, value in list(info.items())[:20]}


def write_predictions(predictions: Mapping[str, float], path: Path) -> None:
    """Validated predictions as image_id,malignant (exact floats), written atomically, 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".keep-", suffix=".csv", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write("image_id,malignant\n" + "".join(f"{key},{value!r}\n" for key, value in predictions.items()))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
