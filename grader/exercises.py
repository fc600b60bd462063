"""The exercise catalog: one folder per exercise, described by ``exercise.toml`` (spec: ``exercises/_example.toml``)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from grader.metrics import DEFAULT_METRIC, METRICS
from grader.weights import ARCHITECTURES

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
REQUIRED_FILES = ("README.md", "starter.py", "solution.py")


_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")
MAX_QUOTA_SECONDS = 7 * 24 * 3600


def parse_duration(text: str | int) -> int:
    """Seconds in ``"90s"``, ``"30m"``, ``"1h"``, ``"1h30m"``, ``"2d"`` or a number of seconds; ValueError else."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    else:
        value = str(text).strip().lower()
        match = _DURATION.match(value) if value else None
        if value.isdigit():
            seconds = int(value)
        elif match and any(match.groups()):
            days, hours, minutes, secs = (int(part or 0) for part in match.groups())
            seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
        else:
            raise ValueError(f"{text!r} is not a duration: write e.g. 90s, 30m, 1h or 1h30m")
    if not 1 <= seconds <= MAX_QUOTA_SECONDS:
        raise ValueError(f"a duration must be between 1 second and 7 days, not {text!r}")
    return seconds


@dataclass(frozen=True)
class Quota:
    """At most ``count`` submissions per participant in any ``per_seconds`` window (rolling)."""

    count: int
    per_seconds: int

    @classmethod
    def parse(cls, value: object) -> Quota:
        """From ``{ count = 5, per = "1h" }``; ValueError naming what is wrong."""
        if not isinstance(value, dict) or set(value) != {"count", "per"}:
            raise ValueError(f'must be a table {{ count = 5, per = "1h" }}, found {value!r}')
        count = value["count"]
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10000:
            raise ValueError(f"'count' must be an integer between 1 and 10000, found {count!r}")
        return cls(count=count, per_seconds=parse_duration(value["per"]))

    def as_dict(self) -> dict:
        return {"count": self.count, "per_seconds": self.per_seconds}


class ExerciseError(Exception):
    """One or more exercises are malformed; ``problems`` lists every one, each naming file and field."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Exercise:
    slug: str
    title: str
    order: int
    image_size: int
    time_limit: int
    memory_limit_mb: int
    allowed_weights: tuple[str, ...]
    score_band: tuple[float, float]
    summary: str
    path: Path = field(compare=False)
    quota: Quota | None = None  # the default; the instructor can change it during the event
    metric: str = DEFAULT_METRIC  # the leaderboard's metric: public_score/private_score (a key of METRICS)
    gpu_memory_mb: int | None = None  # a job's GPU memory where jobs share a GPU (None: the GPU's share)

    @property
    def metric_label(self) -> str:
        """The leaderboard metric in words, e.g. "ROC AUC" or "partial AUC above 80 % sensitivity"."""
        return METRICS[self.metric].label

    @property
    def readme(self) -> str:
        return (self.path / "README.md").read_text(encoding="utf-8")

    @property
    def starter(self) -> str:
        return (self.path / "starter.py").read_text(encoding="utf-8")

    @property
    def solution(self) -> str:
        return (self.path / "solution.py").read_text(encoding="utf-8")

    def as_listing(self) -> dict:
        return {
            "slug": self.slug,
            "title": self.title,
            "image_size": self.image_size,
            "time_limit": self.time_limit,
        }


# field name -> (type check, description used in error messages, default or required)
_REQUIRED = object()
_FIELDS: dict[str, tuple[type | tuple[type, ...], str, object]] = {
    "title": (str, "a non-empty string", _REQUIRED),
    "order": (int, "an integer", _REQUIRED),
    "image_size": (int, "an integer between 16 and 512", _REQUIRED),
    "time_limit": (int, "seconds, an integer between 10 and 7200", _REQUIRED),
    "memory_limit_mb": (int, "megabytes, an integer between 256 and 262144", 4096),
    "allowed_weights": (list, "a list of Keras application names", []),
    "score_band": (list, "two numbers [low, high] with 0 <= low <= high <= 1", _REQUIRED),
    "summary": (str, "a string", ""),
    "quota": (dict, 'a table { count = 5, per = "1h" }', None),
    "metric": (str, "one of " + ", ".join(repr(key) for key in METRICS), DEFAULT_METRIC),
    "gpu_memory_mb": (int, "megabytes of GPU memory, an integer between 256 and 1048576", None),
}
_RANGES = {
    "image_size": (16, 512),
    "time_limit": (10, 7200),
    "memory_limit_mb": (256, 262144),
    "gpu_memory_mb": (256, 1048576),
}


def _check_field(name: str, value: object, where: str) -> list[str]:
    kind, description, _default = _FIELDS[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        return [f"{where}: field '{name}' must be {description}, found {value!r}"]
    if name in _RANGES and not _RANGES[name][0] <= value <= _RANGES[name][1]:
        return [f"{where}: field '{name}' must be {description}, found {value!r}"]
    if name == "title" and not value.strip():
        return [f"{where}: field 'title' must be {description}"]
    if name == "score_band" and not (
        len(value) == 2
        and all(isinstance(bound, int | float) and not isinstance(bound, bool) for bound in value)
        and 0 <= value[0] <= value[1] <= 1
    ):
        return [f"{where}: field 'score_band' must be {description}, found {value!r}"]
    if name == "metric" and value not in METRICS:
        return [f"{where}: field 'metric' must be {description} (higher is better), found {value!r}"]
    if name == "quota":
        try:
            Quota.parse(value)
        except ValueError as error:
            return [f"{where}: field 'quota' {error}"]
    if name == "allowed_weights" and not all(isinstance(item, str) for item in value):
        return [f"{where}: field 'allowed_weights' must be {description}, found {value!r}"]
    if name == "allowed_weights":
        known = ", ".join(ARCHITECTURES)
        return [
            f"{where}: field 'allowed_weights': unknown Keras application {item!r}; known: {known}"
            for item in value
            if item not in ARCHITECTURES
        ]
    return []


def _check_band_fits_metric(values: dict, where: str) -> list[str]:
    """The reference's score band must lie in the leaderboard metric's range (pauc_80 reaches 0.2 at most)."""
    metric, (low, high) = METRICS[values["metric"]], values["score_band"]
    if metric.low <= low <= high <= metric.high:
        return []
    return [
        f"{where}: field 'score_band' {[low, high]!r} lies outside the range of metric '{metric.key}' "
        f"({metric.low:g} to {metric.high:g})"
    ]


def load_exercise(folder: Path) -> Exercise:
    """Load one exercise folder; raises ExerciseError listing every problem at once."""
    where = str(folder / "exercise.toml")
    problems: list[str] = []
    if not SLUG_PATTERN.match(folder.name):
        problems.append(f"{folder}: folder name must be a slug (lower-case letters, digits, -)")
    problems += [f"{folder / name}: file missing" for name in REQUIRED_FILES if not (folder / name).is_file()]
    try:
        spec = tomllib.loads((folder / "exercise.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExerciseError([*problems, f"{where}: file missing"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ExerciseError([*problems, f"{where}: not valid TOML: {error}"]) from None
    values: dict[str, object] = {}
    for name, (_kind, _description, default) in _FIELDS.items():
        if name not in spec:
            if default is _REQUIRED:
                problems.append(f"{where}: field '{name}' is required")
            values[name] = default
            continue
        problems += _check_field(name, spec[name], where)
        values[name] = spec[name]
    problems += [f"{where}: unknown field '{name}'" for name in spec if name not in _FIELDS]
    if not problems:
        problems += _check_band_fits_metric(values, where)
    if problems:
        raise ExerciseError(problems)
    return Exercise(
        slug=folder.name,
        title=str(values["title"]).strip(),
        order=int(values["order"]),
        image_size=int(values["image_size"]),
        time_limit=int(values["time_limit"]),
        memory_limit_mb=int(values["memory_limit_mb"]),
        allowed_weights=tuple(values["allowed_weights"]),
        score_band=(float(values["score_band"][0]), float(values["score_band"][1])),
        summary=str(values["summary"]),
        path=folder,
        quota=Quota.parse(values["quota"]) if values["quota"] is not None else None,
        metric=str(values["metric"]),
        gpu_memory_mb=int(values["gpu_memory_mb"]) if values["gpu_memory_mb"] is not None else None,
    )


def load_catalog(root: str | Path) -> dict[str, Exercise]:
    """Every exercise under ``root`` (folders starting with ``_`` or ``.`` are skipped), sorted by order."""
    root = Path(root)
    exercises: list[Exercise] = []
    problems: list[str] = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(("_", "."))):
        try:
            exercises.append(load_exercise(folder))
        except ExerciseError as error:
            problems += error.problems
    if problems:
        raise ExerciseError(problems)
    return {exercise.slug: exercise for exercise in sorted(exercises, key=lambda item: (item.order, item.slug))}
