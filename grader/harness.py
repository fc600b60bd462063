"""In-sandbox harness: imports the submission, calls ``train(data)``, predicts the test images.

Runs inside the sandbox as ``python -I harness.py SPEC.json``: it must depend only on the standard
library, NumPy and TensorFlow, never on the ``grader`` package. Everything it writes goes to the
output folder and is read by the host as hostile input:

* ``predictions.csv`` -- ``image_id,malignant`` for every test image;
* ``progress.jsonl``  -- one JSON object per finished epoch (written live);
* ``status.json``     -- ``{"ok": bool, "error_kind", "message", "traceback", "notes", "run_info"}``.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import platform
import sys
import time
import traceback

IMPORT_ERRORS = (ImportError,)
PREDICT_BATCH = 64


class ContractError(Exception):
    """The submission broke the contract in a way that is the participant's to fix."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Output:
    """Writes the harness's files into the output folder."""

    def __init__(self, folder: str):
        self.folder = folder
        self.started = time.monotonic()

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def append_progress(self, record: dict) -> None:
        with open(self.path("progress.jsonl"), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, allow_nan=False, default=str) + "\n")

    def write_status(self, status: dict) -> None:
        with open(self.path("status.json"), "w", encoding="utf-8") as handle:
            json.dump(status, handle, default=str)


class WorkshopData:
    """What ``train(data)`` receives: batched datasets, image size, class names, a clock and a logger."""

    def __init__(self, spec: dict, deadline: float):
        import numpy as np

        self.image_size = int(spec["image_size"])
        self.class_names = tuple(spec.get("class_names", ("benign", "malignant")))
        self.batch_size = int(spec.get("batch_size", 32))
        self._dir = spec["data_dir"]
        self._deadline = deadline
        self._np = np
        self.train = self._labelled("train", shuffle=True)
        self.val = self._labelled("val", shuffle=False)

    def seconds_left(self) -> float:
        """Seconds until the harness must stop training to leave time for predicting."""
        return max(0.0, self._deadline - time.monotonic())

    def log(self, message: object) -> None:
        print(f"[data.log] {message}", flush=True)

    def _images(self, split: str):
        return self._np.load(os.path.join(self._dir, f"{split}.npy"), mmap_mode="r", allow_pickle=False)

    def _labels(self, split: str):
        with open(os.path.join(self._dir, f"{split}.csv"), newline="", encoding="utf-8") as handle:
            return self._np.array([int(row["label"]) for row in csv.DictReader(handle)], dtype="float32")

    def _labelled(self, split: str, shuffle: bool):
        return image_dataset(self._images(split), self._labels(split), self.image_size, self.batch_size, shuffle)


def image_dataset(images, labels, image_size: int, batch_size: int, shuffle: bool):
    """A tf.data pipeline reading batches straight from the memory-mapped array (no full copy)."""
    import numpy as np
    import tensorflow as tf

    count = len(images)
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=None, reshuffle_each_iteration=True)

    def read(batch_indices):
        order = np.sort(batch_indices)
        return np.ascontiguousarray(images[order]), (labels[order] if labels is not None else order)

    def load(batch_indices):
        label_type = tf.float32 if labels is not None else tf.int64
        batch, batch_labels = tf.numpy_function(read, [batch_indices], (tf.uint8, label_type))
        batch.set_shape((None, *images.shape[1:]))
        batch = resize(batch, image_size, images.shape[1])
        batch_labels.set_shape((None,))
        return (batch, batch_labels) if labels is not None else batch

    return indices.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def resize(batch, image_size: int, stored_size: int):
    """Resize uint8 images to the exercise's size, keeping uint8."""
    import tensorflow as tf

    if image_size == stored_size:
        return batch
    resized = tf.image.resize(batch, (image_size, image_size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def install_progress_hook(output: Output, data: WorkshopData, reserve_seconds: float) -> list[str]:
    """Make every ``model.fit`` report per-epoch metrics and stop in time, without the participant's help."""
    import keras

    notes: list[str] = []
    original_fit = keras.Model.fit

    class ProgressCallback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            took = time.monotonic() - self.epoch_started
            metrics = {key: _finite(value) for key, value in (logs or {}).items()}
            output.append_progress({"epoch": epoch + 1, "seconds": round(took, 3), "metrics": metrics})
            if data.seconds_left() < took * 1.2 + reserve_seconds and self.model is not None:
                self.model.stop_training = True
                note = f"training was cut short after epoch {epoch + 1} to leave time for predicting"
                if note not in notes:
                    notes.append(note)
                print(f"[harness] {note}", flush=True)

    def fit(self, *args, **kwargs):
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callbacks.append(ProgressCallback())
        kwargs.setdefault("verbose", 2)
        if args and type(args[0]).__module__.startswith("tensorflow"):
            kwargs.setdefault("shuffle", False)  # our datasets are shuffled already; avoids a Keras warning
        return original_fit(self, *args, callbacks=callbacks, **kwargs)

    keras.Model.fit = fit
    return notes


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def load_submission(code_dir: str, module_name: str):
    """Import the participant's module; an ImportError there is an ``import_error``."""
    path = os.path.join(code_dir, f"{module_name}.py")
    sys.path.insert(0, code_dir)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except IMPORT_ERRORS as error:
        raise ContractError("import_error", f"{type(error).__name__}: {error}") from error
    if not callable(getattr(module, "train", None)):
        raise ContractError("runtime_error", "the submission defines no function train(data)")
    return module


def predict_test(model, data_dir: str, image_size: int) -> tuple[list[str], list[float]]:
    """P(malignant) for every test image, checked for shape and finiteness."""
    import numpy as np

    images = np.load(os.path.join(data_dir, "test.npy"), mmap_mode="r", allow_pickle=False)
    with open(os.path.join(data_dir, "test.csv"), newline="", encoding="utf-8") as handle:
        ids = [row["image_id"] for row in csv.DictReader(handle)]
    batches = image_dataset(images, None, image_size, PREDICT_BATCH, shuffle=False)
    scores = model.predict(batches, verbose=0) if ids else np.zeros((0, 1))
    return ids, malignant_probability(scores, len(ids))


def malignant_probability(scores, expected: int) -> list[float]:
    import numpy as np

    scores = np.asarray(scores, dtype="float64")
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    elif scores.ndim == 2 and scores.shape[1] == 2:
        scores = scores[:, 1]
    elif scores.ndim != 1:
        raise ContractError(
            "invalid_predictions", f"the model must output shape (N, 1) or (N, 2); it gave {scores.shape[1:]}"
        )
    if len(scores) != expected:
        raise ContractError("invalid_predictions", f"the model gave {len(scores)} predictions for {expected} images")
    return [float(value) for value in scores]


def write_predictions(output: Output, ids: list[str], probabilities: list[float]) -> None:
    with open(output.path("predictions.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", "malignant"])
        writer.writerows((image_id, repr(value)) for image_id, value in zip(ids, probabilities, strict=True))


def submission_traceback(error: BaseException, submission_path: str) -> str:
    """The traceback starting at the participant's own code, so harness frames do not distract."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != submission_path:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb or error.__traceback__))


def classify(error: BaseException) -> str:
    if isinstance(error, ContractError):
        return error.kind
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return "out_of_memory"
    return "runtime_error"


def run_info() -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["devices"] = [device.name for device in tf.config.list_logical_devices()]
    except Exception as error:  # noqa: BLE001 - facts only, never fatal
        info["tensorflow"] = f"unavailable: {error}"
    return info


def main(spec_path: str) -> int:
    started = time.monotonic()
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    output = Output(spec["out_dir"])
    reserve = float(spec.get("predict_reserve_seconds", 10))
    deadline = started + float(spec["time_limit"]) - reserve
    submission_path = os.path.join(spec["code_dir"], f"{spec.get('module', 'submission')}.py")
    status: dict = {"ok": False, "notes": []}
    try:
        module = load_submission(spec["code_dir"], spec.get("module", "submission"))
        data = WorkshopData(spec, deadline)
        status["notes"] = install_progress_hook(output, data, reserve)
        model = module.train(data)
        if not hasattr(model, "predict"):
            raise ContractError("runtime_error", f"train(data) must return a keras.Model, it returned {model!r:.80}")
        ids, probabilities = predict_test(model, spec["data_dir"], data.image_size)
        write_predictions(output, ids, probabilities)
        status["ok"] = True
    except BaseException as error:  # noqa: BLE001 - every failure is reported, including SystemExit
        status.update(
            error_kind=classify(error),
            message=f"{type(error).__name__}: {error}"[:2000],
            traceback=submission_traceback(error, submission_path)[-20000:],
        )
        print(status["traceback"], file=sys.stderr, flush=True)
    status["run_info"] = run_info()
    status["seconds"] = round(time.monotonic() - started, 3)
    output.write_status(status)
    return 0 if status["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
