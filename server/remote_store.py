"""A remote worker's side of the worker API: the ``JobStore`` of grader.executor over HTTP(S), and what a remote
slot runs for each job (the sandbox on the cached public data; the server scores the uploaded output).

A remote worker needs no database URL, no private labels and no secret key: ``workshop worker --server URL
--token TOKEN`` (or WORKSHOP_SERVER_URL and WORKSHOP_WORKER_TOKEN, which keep the token out of ``ps``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import asdict, replace
from pathlib import Path

from grader.executor import ClaimedJob, SlotReport
from grader.grading import GradeResult, GradingSettings, Progress
from grader.remote_run import UploadedRun, run_sandboxed
from server.worker_cache import CacheError, WorkerCache

log = logging.getLogger(__name__)
API_PATH = "/worker-api/v1"


class RemoteError(RuntimeError):
    """The server answered with an error (``status``) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class WorkerClient:
    """JSON and file requests to the worker API with the worker token (plain urllib: no extra dependency)."""

    def __init__(self, server: str, token: str, timeout: float = 60):
        if not server.startswith(("http://", "https://")):
            raise ValueError(f"the server URL must start with http:// or https://, not {server[:40]!r}")
        self.base, self.token, self.timeout = server.rstrip("/") + API_PATH, token, timeout

    def _request(self, path: str, body: dict | None = None) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        method = "GET" if data is None else "POST"
        return urllib.request.Request(self.base + path, data=data, headers=headers, method=method)  # noqa: S310

    def _open(self, request: urllib.request.Request):
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - http(s) only, checked above
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read(65536))["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = error.reason
            raise RemoteError(f"{request.full_url}: {error.code} {message}", error.code) from None
        except (urllib.error.URLError, OSError) as error:
            raise RemoteError(f"{request.full_url}: the server cannot be reached ({error})") from None

    def get_json(self, path: str) -> dict:
        with self._open(self._request(path)) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict) -> dict:
        with self._open(self._request(path, body)) as response:
            return json.loads(response.read())

    def download(self, path: str, dest: Path) -> None:
        with self._open(self._request(path)) as response, dest.open("wb") as handle:
            shutil.copyfileobj(response, handle, 1 << 20)


class RemoteJobStore:
    """grader.executor's JobStore through the worker API; each write carries the claim token."""

    def __init__(self, client: WorkerClient):
        self.client = client
        self.facts: dict[int, dict] = {}  # per claimed job: the exercise's limits as the server has them
        self.quiet_until = 0.0  # monotonic: claim errors are logged at most once a minute

    def claim_next_job(self, worker: str, lease_seconds: float) -> ClaimedJob | None:
        """The next job in fair order, or None; a server that is away or refuses the token is said once a minute."""
        try:
            job = self.client.post("/claim", {"slot": worker})["job"]
        except RemoteError as error:
            if time.monotonic() >= self.quiet_until:
                self.quiet_until = time.monotonic() + 60
                hint = " (was the worker token revoked?)" if error.status == 401 else ""
                log.error("no job can be claimed: %s%s", error, hint)
            return None
        if job is None:
            return None
        self.facts[job["submission_id"]] = job.get("exercise") or {}
        return ClaimedJob(
            job["submission_id"], job["token"], job["code"], job["exercise_slug"], job["dataset"], job.get("seed")
        )

    def _job(self, job: ClaimedJob, action: str, body: dict | None = None) -> dict:
        return self.client.post(f"/jobs/{job.submission_id}/{action}", {"token": job.token, **(body or {})})

    def renew_lease(self, job: ClaimedJob, lease_seconds: float) -> bool:
        return bool(self._job(job, "lease")["ok"])

    def report_progress(self, job: ClaimedJob, progress: Progress) -> None:
        progress = progress.storable()
        self._job(job, "progress", {"log": progress.log[-20000:], "history": progress.history})

    def record_result(self, job: ClaimedJob, result: GradeResult) -> bool:
        """Upload the sandbox's output (the server scores it); a failure here can only be ours: infrastructure."""
        self.facts.pop(job.submission_id, None)
        try:
            if isinstance(result, UploadedRun) and result.output is not None:
                return bool(self._job(job, "result", {"output": result.output.as_json()})["recorded"])
            message = result.message or f"the worker could not run the job ({result.error_kind})"
            return bool(self._job(job, "failure", {"message": message})["recorded"])
        except RemoteError as error:
            if error.status == 409:  # cancelled or requeued meanwhile: nothing to record
                return False
            raise

    def release_job(self, job: ClaimedJob, reason: str) -> None:
        self.facts.pop(job.submission_id, None)
        self._job(job, "release", {"reason": reason})

    def fail_job(self, job: ClaimedJob, reason: str) -> bool:
        return bool(self._job(job, "failure", {"message": reason, "minimal": True})["recorded"])

    def report_slot(self, slot: SlotReport) -> None:
        self.client.post("/slots", asdict(slot))


def grade_remote(
    store: RemoteJobStore,
    cache: WorkerCache,
    catalog: dict,
    settings: GradingSettings,
    job: ClaimedJob,
    uid: int,
    on_progress,
    gpu: int | None = None,
) -> GradeResult:
    """What a remote slot runs: fetch (or reuse) the public data and weights, run the sandbox, hand back its output."""
    exercise = catalog.get(job.exercise_slug)
    if exercise is None:
        message = f"this worker does not know the exercise {job.exercise_slug}; update it"
        return GradeResult(status="failed", error_kind="infrastructure", message=message)
    facts = store.facts.get(job.submission_id, {})
    known = {
        key: facts[key] for key in ("image_size", "time_limit", "memory_limit_mb") if isinstance(facts.get(key), int)
    }
    if isinstance(facts.get("allowed_weights"), list):
        known["allowed_weights"] = tuple(str(item) for item in facts["allowed_weights"])
    exercise = replace(exercise, **known)  # the server's limits win over this worker's copy of the exercise
    try:
        dataset = cache.dataset(job.dataset)
        cache.weights()
    except (CacheError, RemoteError, OSError, KeyError, TypeError) as error:
        return GradeResult(status="failed", error_kind="infrastructure", message=f"fetching the data failed: {error}")
    output = run_sandboxed(
        job.code, exercise, dataset, settings, uid=uid, on_progress=on_progress, gpu=gpu, seed=job.seed
    )
    if isinstance(output, GradeResult):
        return output
    return UploadedRun(status="uploaded", output=output)
