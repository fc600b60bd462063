"""Reading the sandbox's output as hostile input, and scoring predictions against the hidden labels."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from pathlib import Path

import numpy as np

from grader.data import HiddenLabels
from grader.metrics import evaluate

MAX_PREDICTIONS_BYTES = 16 * 1024 * 1024
MAX_STATUS_BYTES = 256 * 1024
MAX_PROGRESS_BYTES = 1024 * 1024


class InvalidPredictions(Exception):
    """predictions.csv is missing or malformed; the message says what is wrong, in plain words."""


def read_untrusted(folder: Path, name: str, max_bytes: int) -> bytes | None:
    """Read a file the sandbox wrote: no symlinks, regular files only, at most ``max_bytes``.

    Returns None when the file (or the folder) does not exist; raises ValueError for anything suspicious,
    including a folder that was replaced by a symbolic link or a file.
    """
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ValueError(
            f"the output folder is not a plain directory (symbolic link or file): {error.strerror}"
        ) from None
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ValueError(f"{name} is not a regular file (symbolic link or special file)") from error
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{name} is not a regular file")
            if info.st_size > max_bytes:
                raise ValueError(f"{name} is too large ({info.st_size} bytes, at most {max_bytes})")
            chunks, remaining = [], max_bytes + 1
            while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
            if len(data) > max_bytes:
                raise ValueError(f"{name} is too large (more than {max_bytes} bytes)")
            return data
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def read_predictions(folder: Path, expected_ids: list[str]) -> dict[str, float]:
    """Parse predictions.csv strictly: header, every test id exactly once, finite floats in [0, 1]."""
    try:
        raw = read_untrusted(folder, "predictions.csv", MAX_PREDICTIONS_BYTES)
    except ValueError as error:
        raise InvalidPredictions(str(error)) from None
    if raw is None:
        raise InvalidPredictions("no predictions.csv was written")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPredictions("predictions.csv is not UTF-8 text") from None
    try:
        predictions = _parse_predictions(text, set(expected_ids))
    except csv.Error as error:  # a NUL byte, a field over the csv module's limit, a stray quote...
        raise InvalidPredictions(f"predictions.csv is not a readable CSV file: {error}") from None
    missing = len(expected_ids) - len(predictions)
    if missing:
        raise InvalidPredictions(f"predictions.csv lacks {missing} of the {len(expected_ids)} test images")
    return predictions


def _parse_predictions(text: str, expected: set[str]) -> dict[str, float]:
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(rows, None)
    if header != ["image_id", "malignant"]:
        raise InvalidPredictions(f"predictions.csv must start with the header image_id,malignant; found {header!r:.80}")
    predictions: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        predictions.update([_parse_row(row, line, expected, predictions)])
    return predictions


def _parse_row(row: list[str], line: int, expected: set[str], seen: dict[str, float]) -> tuple[str, float]:
    if len(row) != 2:
        raise InvalidPredictions(f"predictions.csv line {line}: expected 2 fields, found {len(row)}")
    image_id, value = row
    if image_id not in expected:
        raise InvalidPredictions(f"predictions.csv line {line}: unknown image id {image_id!r:.40}")
    if image_id in seen:
        raise InvalidPredictions(f"predictions.csv line {line}: image id {image_id!r:.40} appears twice")
    try:
        number = float(value)
    except ValueError:
        raise InvalidPredictions(f"predictions.csv line {line}: {value!r:.40} is not a number") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise InvalidPredictions(
            f"predictions.csv line {line}: probability must be a finite number in [0, 1], found {value!r:.40}"
        )
    return image_id, number


def read_status(folder: Path) -> dict:
    """The harness's status.json reduced to known keys of known types, or ``{"unreadable": True}``."""
    try:
        raw = read_untrusted(folder, "status.json", MAX_STATUS_BYTES)
        status = json.loads(raw) if raw is not None else {}
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly nested JSON
        return {"unreadable": True}
    return _clean_status(status) if isinstance(status, dict) else {"unreadable": True}


def _clean_status(status: dict) -> dict:
    """Only what the host uses, typed: a hostile job may put anything (numbers, nesting) anywhere."""
    clean: dict = {
        key: status[key] for key in ("error_kind", "message", "traceback") if isinstance(status.get(key), str)
    }
    clean["ok"] = status.get("ok") is True
    notes = status.get("notes")
    clean["notes"] = [note[:300] for note in notes[:10] if isinstance(note, str)] if isinstance(notes, list) else []
    info = status.get("run_info")
    items = list(info.items())[:20] if isinstance(info, dict) else []
    clean["run_info"] = {str(key)[:40]: _short_text(value) for key, value in items}
    return clean


def _short_text(value: object, limit: int = 300) -> str:
    try:
        return (value if isinstance(value, str) else json.dumps(value))[:limit]
    except (ValueError, TypeError, RecursionError):
        return "?"


def read_progress(folder: Path) -> list[dict]:
    """Per-epoch records from progress.jsonl; malformed lines are dropped, never trusted."""
    try:
        raw = read_untrusted(folder, "progress.jsonl", MAX_PROGRESS_BYTES)
    except ValueError:
        return []
    history = []
    for line in (raw or b"").decode("utf-8", errors="replace").splitlines()[-1000:]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int) and 0 <= record["epoch"] < 10**9:
            history.append(_clean_epoch(record))
    return history


def _finite_float(value: object) -> float | None:
    """A finite float, or None for anything else (strings, NaN, inf, integers too large for a float)."""
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _clean_epoch(record: dict) -> dict:
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    clean = {
        str(key)[:40]: number
        for key, value in list(metrics.items())[:20]
        if (number := _finite_float(value)) is not None
    }
    return {"epoch": int(record["epoch"]), "seconds": _finite_float(record.get("seconds")), "metrics": clean}


def _partition_arrays(predictions: dict[str, float], labels: HiddenLabels, partition: str):
    ids = labels.ids(partition)
    truth = np.fromiter((labels.labels[image_id] for image_id in ids), dtype=np.int64, count=len(ids))
    scores = np.fromiter((predictions[image_id] for image_id in ids), dtype=np.float64, count=len(ids))
    return truth, scores


def score_partition(predictions: dict[str, float], labels: HiddenLabels, partition: str) -> dict:
    """The metrics of one part of the test split: exactly the keys ``grader.metrics.METRIC_KEYS``."""
    return evaluate(*_partition_arrays(predictions, labels, partition))[0]


def score_predictions(predictions: dict[str, float], labels: HiddenLabels) -> dict:
    """``{"public": metrics, "private": metrics, "figures": {"public": .., "private": ..}}``, all computed here.

    The figures (ROC curve, operating point at 0.5, confusion matrix) come from the host's own scoring, never
    from the sandbox; a participant may see the public ones only (``server.submissions.visible_metrics``).
    """
    public, public_figures = evaluate(*_partition_arrays(predictions, labels, "public"))
    private, private_figures = evaluate(*_partition_arrays(predictions, labels, "private"))
    return {"public": public, "private": private, "figures": {"public": public_figures, "private": private_figures}}


def leaderboard_scores(metrics: dict, metric: str) -> tuple[float | None, float | None]:
    """``public_score`` and ``private_score``: the exercise's leaderboard metric of each partition."""
    return metrics["public"][metric], metrics["private"][metric]
