"""Grading split in two for remote workers: the worker runs the sandbox, the server scores what it uploads.

A remote worker holds only public data, so it cannot score: :func:`run_sandboxed` runs the job exactly as
``grader.grading.grade`` does and returns the sandbox's output (:class:`RunOutput`: how it ended, the capped
log, and the files the harness wrote, each read as hostile input). The server turns an uploaded output back
into a verdict with :func:`interpret_output`, which reads the files with the same strict parsers and scores
them against the private labels it alone holds.
"""

from __future__ import annotations

import base64
import gzip
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.data import DatasetPaths
from grader.exercises import Exercise
from grader.grading import (
    GradeResult,
    GradingSettings,
    Progress,
    _interpret,
    _prepare_job_dir,
    _sandbox_job,
    check_source,
    limits_for,
)
from grader.sandbox import BASE_UID, SandboxJob, SandboxResult, SandboxUnavailable
from grader.scoring import (
    MAX_PREDICTIONS_BYTES,
    MAX_PROGRESS_BYTES,
    MAX_STATUS_BYTES,
    read_progress,
    read_untrusted,
)
from grader.storable import storable_text

# the files a job may leave for the server, and how large each may be (as the server's own parsers allow)
OUTPUT_FILES = {
    "predictions.csv": MAX_PREDICTIONS_BYTES,
    "status.json": MAX_STATUS_BYTES,
    "progress.jsonl": MAX_PROGRESS_BYTES,
}
MAX_LOG_CHARS = 100_000
MAX_UPLOAD_BYTES = sum(OUTPUT_FILES.values()) * 2 + 1024 * 1024  # base64 of the gzipped files, the log, the rest


class BadOutput(ValueError):
    """An uploaded output is malformed (wrong types, unknown files, too large)."""


@dataclass(frozen=True)
class RunOutput:
    """What the sandbox left: how the run ended, its capped log and notes, and the harness's files (raw bytes)."""

    exit_code: int | None
    timed_out: bool
    out_of_memory: bool
    log: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # file name -> why it was not taken (symlink, size)

    def as_json(self) -> dict:
        """A JSON body for the upload: each file gzipped and base64-encoded."""
        return {
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "out_of_memory": self.out_of_memory,
            "log": self.log,
            "seconds": self.seconds,
            "notes": self.notes,
            "files": {name: _pack(data) for name, data in self.files.items()},
            "unreadable": self.unreadable,
        }

    @classmethod
    def from_json(cls, body: object) -> RunOutput:
        """Parse an uploaded body strictly; raises BadOutput for anything that is not what as_json makes."""
        if not isinstance(body, dict):
            raise BadOutput("the body must be a JSON object")
        exit_code = body.get("exit_code")
        if exit_code is not None and (not isinstance(exit_code, int) or isinstance(exit_code, bool)):
            raise BadOutput("exit_code must be an integer or null")
        flags = [body.get("timed_out"), body.get("out_of_memory")]
        if not all(isinstance(flag, bool) for flag in flags):
            raise BadOutput("timed_out and out_of_memory must be true or false")
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds < 10**7:
            raise BadOutput("seconds must be a number")
        notes, unreadable = body.get("notes", []), body.get("unreadable", {})
        if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
            raise BadOutput("notes must be a list of strings")
        if not isinstance(unreadable, dict) or not all(isinstance(v, str) for v in unreadable.values()):
            raise BadOutput("unreadable must map file names to reasons")
        log = body.get("log")
        if not isinstance(log, str):
            raise BadOutput("log must be a string")
        return cls(
            exit_code,
            flags[0],
            flags[1],
            storable_text(log, MAX_LOG_CHARS, keep="ends"),
            float(seconds),
            [storable_text(note, 300) for note in notes[:10]],
            _decode_files(body.get("files", {})),
            {name: storable_text(why, 300) for name, why in unreadable.items() if name in OUTPUT_FILES},
        )


def _decode_files(files: object) -> dict[str, bytes]:
    if not isinstance(files, dict):
        raise BadOutput("files must map file names to gzipped base64")
    decoded = {}
    for name, text in files.items():
        if name not in OUTPUT_FILES or not isinstance(text, str):
            raise BadOutput(f"unexpected output file {str(name)[:40]!r}")
        try:
            packed = base64.b64decode(text.encode("ascii"), validate=True)
            data = gzip.GzipFile(fileobj=io.BytesIO(packed)).read(OUTPUT_FILES[name] + 1)
        except (ValueError, OSError, EOFError) as error:
            raise BadOutput(f"{name} is not gzipped base64: {error}") from None
        if len(data) > OUTPUT_FILES[name]:
            raise BadOutput(f"{name} is larger than {OUTPUT_FILES[name]} bytes")
        decoded[name] = data
    return decoded


def _pack(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, 6)).decode("ascii")


def collect_output(run: SandboxResult, out_dir: Path) -> RunOutput:
    """The run and the harness's files, each read with the hostile-file reader (no links, size capped)."""
    files, unreadable = {}, {}
    for name, limit in OUTPUT_FILES.items():
        try:
            data = read_untrusted(out_dir, name, limit)
        except ValueError as error:
            unreadable[name] = str(error)[:300]
            continue
        if data is not None:
            files[name] = data
    return RunOutput(
        run.exit_code, run.timed_out, run.out_of_memory, run.log, run.seconds, list(run.notes), files, unreadable
    )


def run_sandboxed(
    code: str,
    exercise: Exercise,
    dataset: DatasetPaths,
    settings: GradingSettings,
    *,
    uid: int = BASE_UID,
    on_progress: Callable[[Progress], None] | None = None,
    gpu: int | None = None,
    seed: int | None = None,
) -> RunOutput | GradeResult:
    """Run the job in the sandbox on public data only; a GradeResult where it could not run (never scored here)."""
    started = time.monotonic()
    code = check_source(code)  # the server checked it before queueing; a failure here is a bug, not the job's
    backend = settings.backend()
    job_dir = _prepare_job_dir(settings.jobs_dir, code, uid)
    job: SandboxJob | None = None
    try:
        job = _sandbox_job(job_dir, exercise, dataset, settings, limits_for(exercise), uid=uid, gpu=gpu, seed=seed)

        def poll(log: str) -> None:
            if on_progress is not None:
                on_progress(Progress(log=log, history=read_progress(job.out_dir)))

        try:
            run = backend.run(job, on_poll=poll)
        except SandboxUnavailable as error:
            return GradeResult(status="failed", error_kind="infrastructure", message=f"the sandbox refused: {error}")
        return replace(collect_output(run, job.out_dir), seconds=round(time.monotonic() - started, 3))
    finally:
        if job is not None:
            backend.release(job)
        shutil.rmtree(job_dir, ignore_errors=True)


def interpret_output(
    output: RunOutput, dataset: DatasetPaths, *, metric: str, keep: Path | None = None, work_dir: Path | None = None
) -> GradeResult:
    """The verdict on an uploaded output, scored here with the private labels (as ``grade`` does after a run)."""
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=work_dir))
    try:
        out_dir = folder / "out"
        out_dir.mkdir(mode=0o700)
        for name, data in output.files.items():
            (out_dir / name).write_bytes(data)
        run = SandboxResult(
            exit_code=output.exit_code,
            timed_out=output.timed_out,
            out_of_memory=output.out_of_memory,
            log=output.log,
            log_bytes=len(output.log),
            seconds=output.seconds,
            notes=[*output.notes, *(f"{name} was not taken: {why}" for name, why in output.unreadable.items())],
        )
        result = _interpret(run, out_dir, dataset, keep, metric=metric)
        if result.error_kind == "invalid_predictions" and "predictions.csv" in output.unreadable:
            result = replace(result, message=output.unreadable["predictions.csv"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return replace(result, seconds=round(output.seconds, 3)).storable()


@dataclass(frozen=True)
class UploadedRun(GradeResult):
    """What a remote slot's grade function returns: no verdict yet, the output the server will score."""

    output: RunOutput | None = None
