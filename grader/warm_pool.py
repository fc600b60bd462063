"""Warm slots: each worker slot's next sandbox, started while the slot waits (``WORKSHOP_WARM_SLOTS``).

``grade`` tells the pool what its slot's jobs look like (a :class:`WarmPlan`: the backend, limits, data,
weights, uid and GPU of the job it was given) and takes the warm sandbox that matches, if one waits.
The executor calls :meth:`WarmPool.refresh` between jobs and while idle: it starts the slot's next
sandbox from the last plan, and replaces one that waited longer than ``warm_max_seconds`` or whose data
set or weights changed on disk since it started. A job whose plan differs (another exercise's limits,
another data set) discards the waiting sandbox and runs in a fresh one. ``workshop grade`` and
``exercises check`` never refresh, so they keep running cold.

A busy slot gains too: with warm slots a slot holds two sandbox uids (:class:`SlotUids`) and runs its jobs
as each in turn. When a job takes its sandbox, the pool starts the next one under the slot's other uid, so
it imports TensorFlow while the job runs and the job after it starts at once. The two never meet: another
uid, cgroup and job folder, and the waiting one holds nothing of anyone until its own job arrives.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from grader.sandbox.bwrap import BwrapSandbox
from grader.sandbox.limits import Limits, SandboxJob, SandboxUnavailable
from grader.sandbox.locks import SlotLock, pair_uids, partner_uid, unpair_uids
from grader.sandbox.warm import WarmSandbox

log = logging.getLogger(__name__)
# a warm sandbox holds TensorFlow (about 600 MB) before its job: jobs allowed less memory run cold
WARM_MIN_MEMORY_MB = 1024
RETRY_SECONDS = 60  # after a warm sandbox failed to start, its slot runs cold this long before trying again


def empty_job_dir(work_dir: Path, uid: int) -> Path:
    """A fresh job folder: an empty code folder (root's, read-only in the sandbox) and ``uid``'s output folder."""
    work_dir.mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=work_dir))
    os.chmod(job_dir, 0o711)  # noqa: S103 - traversable so bwrap can bind code and output; not listable
    (job_dir / "code").mkdir(mode=0o755)
    out_dir = job_dir / "out"
    out_dir.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(out_dir, uid, uid)
    return job_dir


def fingerprint(folder: Path | None) -> tuple:
    """What changes when a data set or weights folder is replaced or rewritten: names, inodes, sizes, times."""
    if folder is None or not folder.is_dir():
        return ()
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        stats = [(entry.name, entry.stat()) for entry in entries]
    except OSError:
        return ("unreadable",)
    return tuple((name, info.st_ino, info.st_size, info.st_mtime_ns) for name, info in stats)


@dataclass(frozen=True)
class WarmPlan:
    """How a slot's next sandbox is started: what the last job it ran was started with."""

    backend: BwrapSandbox
    jobs_dir: Path
    limits: Limits
    data_dir: Path
    weights_dir: Path | None
    uid: int
    gpu: int | None
    max_seconds: float = 600

    def key(self) -> tuple:
        """Equal keys: a sandbox started for one plan serves the other (data and weights unchanged on disk).

        The limits the host applies only from the hand-off on (the wall clock, the log's size, the CPU time,
        which the harness sets then) do not count, so exercises that differ only in their time limit share."""
        weights = self.weights_dir if self.weights_dir is not None and self.weights_dir.is_dir() else None
        return (
            type(self.backend),
            replace(self.limits, wall_seconds=0, log_head_bytes=0, log_tail_bytes=0, kill_grace_seconds=0),
            str(self.data_dir),
            fingerprint(self.data_dir),
            str(weights),
            fingerprint(weights),
            self.uid,
            self.gpu,
        )

    def start(self) -> WarmSandbox:
        job_dir = empty_job_dir(self.jobs_dir, self.uid)
        job = SandboxJob(
            job_dir / "code",
            job_dir / "out",
            self.data_dir,
            {},
            self.limits,
            uid=self.uid,
            gpu=self.gpu,
            weights_dir=self.weights_dir,
        )
        try:
            return WarmSandbox.start(self.backend, job)
        except BaseException:
            import shutil

            shutil.rmtree(job_dir, ignore_errors=True)
            raise


class WarmPool:
    """The waiting sandboxes of this process's slots, one per uid at most."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: dict[int, tuple[tuple, WarmSandbox]] = {}
        self.plans: dict[int, WarmPlan] = {}
        self.started = 0  # warm sandboxes started (for tests and the benchmark)
        self.failed_at: dict[int, float] = {}  # uid -> when starting its sandbox last failed (retried later)

    def plan(self, plan: WarmPlan) -> bool:
        """A first plan for ``plan.uid``'s slot (before its first job); False where it has one already."""
        with self.lock:
            if plan.uid in self.plans:
                return False
            self.plans[plan.uid] = plan
        return True

    def take(self, plan: WarmPlan) -> WarmSandbox | None:
        """The waiting sandbox for ``plan`` (removed from the pool), or None; remembers ``plan`` for the next one."""
        with self.lock:
            self.plans[plan.uid] = plan
            entry = self.waiting.pop(plan.uid, None)
        taken = None
        if entry is not None:
            key, warm = entry
            if key == plan.key() and warm.age() <= plan.max_seconds and warm.alive():
                taken = warm
            else:
                warm.discard()
        self.warm_partner(plan)
        return taken

    def warm_partner(self, plan: WarmPlan) -> None:
        """Where the slot holds a second uid: start the slot's next sandbox under it now (the job runs meanwhile)."""
        partner = partner_uid(plan.uid)
        if partner is None:
            return
        with self.lock:
            self.plans[partner] = replace(plan, uid=partner)
        self.refresh(partner)

    def refresh(self, uid: int) -> bool:
        """Make sure ``uid``'s next sandbox waits, fresh and matching its plan; True when one waits afterwards."""
        with self.lock:
            plan = self.plans.get(uid)
            entry = self.waiting.get(uid)
        if plan is None:
            return False
        if entry is not None:
            key, warm = entry
            if key == plan.key() and warm.age() <= plan.max_seconds:
                if warm.alive():
                    return True
                # it ended by itself (a harness that cannot import its frameworks): not again every second
                log.warning("uid %s: the warm sandbox ended before any job (exit %s)", uid, warm.process.poll())
                self.failed_at[uid] = time.monotonic()
            self.discard(uid)
        if time.monotonic() - self.failed_at.get(uid, -RETRY_SECONDS) < RETRY_SECONDS:
            return False  # it failed a moment ago: an idle slot does not retry (and log) every second
        try:
            warm = plan.start()
        except Exception:  # the next job runs cold and reports what is wrong; a slot does not die of this
            log.exception("uid %s: starting a warm sandbox failed; trying again in %d s", uid, RETRY_SECONDS)
            self.failed_at[uid] = time.monotonic()
            return False
        with self.lock:
            self.failed_at.pop(uid, None)
            self.waiting[uid] = (plan.key(), warm)
            self.started += 1
        return True

    def discard(self, uid: int | None = None) -> None:
        """End the waiting sandbox of ``uid`` (all of them when None)."""
        with self.lock:
            uids = list(self.waiting) if uid is None else [uid]
            entries = [self.waiting.pop(each) for each in uids if each in self.waiting]
        for _key, warm in entries:
            try:
                warm.discard()
            except Exception:
                log.exception("discarding a warm sandbox failed")

    def forget(self, uid: int) -> None:
        """Stop warming for ``uid`` (its slot ends): discard what waits and the plan."""
        self.discard(uid)
        with self.lock:
            self.plans.pop(uid, None)
            self.failed_at.pop(uid, None)


class SlotUids:
    """The sandbox uid(s) one slot holds for as long as it runs: one, or with warm slots (``pair``) two, used in
    turn so that the next job's sandbox warms under the other while a job runs (see the module's docstring)."""

    def __init__(self, pair: bool = False, pool: WarmPool | None = None):
        self.pair, self.pool = pair, pool
        self.locks: list[SlotLock] = []
        self.uids: list[int] = []
        self.index = 0

    def __enter__(self) -> SlotUids:
        try:
            for _ in range(2 if self.pair else 1):
                lock = SlotLock()
                self.uids.append(lock.acquire())
                self.locks.append(lock)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        if len(self.uids) == 2:
            pair_uids(*self.uids)
        return self

    @classmethod
    def held(cls, *uids: int) -> SlotUids:
        """Uids the caller holds already (no locks taken or released here), e.g. a test's."""
        made = cls(pair=len(uids) == 2)
        made.uids = list(uids)
        return made

    @property
    def current(self) -> int:
        """The uid the slot's next job runs as."""
        return self.uids[self.index]

    def advance(self) -> int:
        """The job ran: the next one runs as the other uid, whose sandbox has been warming meanwhile (returned)."""
        self.index = (self.index + 1) % len(self.uids)
        return self.current

    def __exit__(self, *exc_info) -> None:
        pool = self.pool or POOL
        for uid in self.uids:
            pool.forget(uid)
        if len(self.uids) == 2:
            unpair_uids(self.uids[0])
        for lock in self.locks:
            lock.release()


def warm_plan(settings, backend, limits: Limits, public: Path, uid: int, gpu: int | None) -> WarmPlan | None:
    """How a warm sandbox for such a job starts (``settings``: GradingSettings); None where jobs run cold (warm
    slots off, not bwrap, under WARM_MIN_MEMORY_MB)."""
    if not settings.warm_slots or not isinstance(backend, BwrapSandbox) or limits.memory_mb < WARM_MIN_MEMORY_MB:
        return None
    plan = WarmPlan(backend, settings.jobs_dir, limits, public, settings.weights_dir, uid, gpu)
    return replace(plan, max_seconds=settings.warm_max_seconds)


def warm_sandbox(pool: WarmPool, settings, backend, limits: Limits, public: Path, uid: int, gpu: int | None):
    """With warm slots (bwrap): the slot's waiting sandbox when it matches this job, else one started now."""
    plan = warm_plan(settings, backend, limits, public, uid, gpu)
    if plan is None:
        return None
    warm = pool.take(plan)
    if warm is not None:
        return warm
    try:
        return plan.start()  # no head start, but the same path as a slot's warm job
    except SandboxUnavailable:  # the cold run that follows says why, as an infrastructure failure
        return None


def plan_first_sandbox(plan_warm, uid: int, gpu: int | None) -> None:
    """Warm slots: a new idle slot plans its first sandbox (``plan_warm(uid, gpu)``), which the pool's refresh
    then starts before any job; None: nothing to plan (warm slots off)."""
    if plan_warm is not None:
        try:
            plan_warm(uid, gpu)
        except Exception:  # the first job then runs cold; a slot does not die of this
            log.exception("uid %s: planning its first warm sandbox failed", uid)


POOL = WarmPool()  # this process's slots share it (each slot thread touches only its own uid)
