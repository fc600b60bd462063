"""Check the curriculum: run each exercise's reference solution (and starter) and compare with its score band.

``workshop exercises check`` is the command-line face of this module; it grades through the configured
sandbox exactly as a participant's submission is graded, so a passing check means the exercise works
on this server, with these weights and this data set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.data import DatasetPaths
from grader.exercises import Exercise
from grader.grading import GradeResult, GradingSettings, grade
from grader.weights import exercise_weights, is_stand_in

KINDS = ("solution", "starter")


@dataclass(frozen=True)
class CheckResult:
    """One graded file of one exercise, judged against the exercise's band."""

    slug: str
    kind: str  # "solution" or "starter"
    status: str  # the grading status: "done" or "failed"
    public_score: float | None
    private_score: float | None
    band: tuple[float, float]
    seconds: float
    time_limit: int
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)  # "MobileNetV2 (stand-in)", "MobileNetV2 (missing)", ...

    @property
    def verdict(self) -> str:
        """``in band``, ``below band``, ``above band``, ``failed``; a starter is only judged on running."""
        if self.status != "done" or self.public_score is None:
            return "failed"
        if self.kind != "solution":
            return "ran"
        low, high = self.band
        if self.public_score < low:
            return "below band"
        return "above band" if self.public_score > high else "in band"

    @property
    def ok(self) -> bool:
        return self.verdict in ("in band", "ran")

    def as_dict(self) -> dict:
        return {**asdict(self), "band": list(self.band), "verdict": self.verdict, "ok": self.ok}


def weights_facts(exercise: Exercise, models_dir: Path | None) -> list[str]:
    """Which allowed weights this server has, so a low score with stand-in weights explains itself."""
    facts = []
    for item in exercise_weights(exercise):
        path = Path(models_dir) / item.file_name if models_dir is not None else None
        if path is None or not path.is_file():
            facts.append(f"{item.architecture} (missing)")
        elif is_stand_in(models_dir, item):
            facts.append(f"{item.architecture} (stand-in)")
        else:
            facts.append(item.architecture)
    return facts


def check_exercise(
    exercise: Exercise,
    kind: str,
    dataset: DatasetPaths,
    settings: GradingSettings,
    *,
    grade_file: Callable[..., GradeResult] | None = None,
    **grade_options,
) -> CheckResult:
    """Grade the exercise's ``solution.py`` or ``starter.py`` on ``dataset`` (with ``grade`` unless told)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    code = exercise.solution if kind == "solution" else exercise.starter
    result = (grade_file or grade)(code, exercise, dataset, settings, **grade_options)
    return CheckResult(
        slug=exercise.slug,
        kind=kind,
        status=result.status,
        public_score=result.public_score,
        private_score=result.private_score,
        band=exercise.score_band,
        seconds=result.seconds,
        time_limit=exercise.time_limit,
        error=f"{result.error_kind}: {result.message}" if result.status != "done" else None,
        notes=list(result.notes),
        weights=weights_facts(exercise, settings.weights_dir),
    )


def check_curriculum(
    exercises: Iterable[Exercise],
    dataset: DatasetPaths,
    settings: GradingSettings,
    *,
    starters: bool = False,
    on_result: Callable[[CheckResult], None] | None = None,
    **options,
) -> list[CheckResult]:
    """Every reference solution (and, with ``starters``, every starter), in catalog order."""
    results = []
    for exercise in exercises:
        for kind in ("solution", "starter") if starters else ("solution",):
            result = check_exercise(exercise, kind, dataset, settings, **options)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def curriculum_ok(results: list[CheckResult]) -> bool:
    """True when every reference lands in its band and every starter checked runs to a score."""
    return bool(results) and all(result.ok for result in results)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_row(result: CheckResult) -> str:
    band = f"{result.band[0]:.2f}-{result.band[1]:.2f}"
    time = f"{result.seconds:.0f}/{result.time_limit} s"
    weights = ", ".join(result.weights) or "-"
    return (
        f"{result.slug:22} {result.kind:8} {_score(result.public_score):>7} {_score(result.private_score):>7} "
        f"{band:>9} {result.verdict:10} {time:>10}  {weights}"
    )


TABLE_HEADER = (
    f"{'exercise':22} {'file':8} {'public':>7} {'private':>7} {'band':>9} {'verdict':10} {'time':>10}  weights"
)


def format_details(results: list[CheckResult]) -> list[str]:
    """One line per failure, and per note that training was cut short."""
    lines = []
    for result in results:
        if result.error:
            lines.append(f"{result.slug} {result.kind}: {result.error}")
        lines += [f"{result.slug} {result.kind}: note: {note}" for note in result.notes if "cut short" in note]
    return lines


def format_table(results: list[CheckResult]) -> str:
    """A plain-text table, then the details worth reading."""
    rows = [format_row(result) for result in results]
    return "\n".join([TABLE_HEADER, "-" * len(TABLE_HEADER), *rows, *format_details(results)])
