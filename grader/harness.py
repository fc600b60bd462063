"""In-sandbox harness: imports the submission, calls ``train(data)``, predicts the test images.

Runs inside the sandbox as ``python -I harness.py SPEC.json`` (and on a participant's laptop through the
starter kit's ``run_local.py``): it must depend only on the standard library, NumPy and TensorFlow, never
on the ``grader`` package. Everything it writes goes to the output folder and is read by the host as
hostile input:

* ``predictions.csv`` -- ``image_id,malignant`` for every test image;
* ``progress.jsonl``  -- one JSON object per finished epoch (written live);
* ``status.json``     -- ``{"ok": bool, "error_kind", "message", "traceback", "notes", "run_info"}``.

Besides running the code it keeps three promises of the workshop:

* **Repeatable runs.** ``spec["seed"]`` (a random one when absent) seeds Python's ``random`` and NumPy before
  the submission is imported and Keras/TensorFlow (``keras.utils.set_random_seed``) right after, before the
  data pipelines are built; ``train`` sees it as ``data.seed``. The same code with the same seed on the same
  machine trains the same model (on a GPU some kernels are not bit-for-bit deterministic).

* **Time.** Every ``model.fit`` reports its epochs live and is stopped in time, between epochs or in the
  middle of one, so that predicting fits in the reserve; the weights of the best epoch seen so far are
  restored before predicting, and a note says that training was cut short.
* **Pretrained weights offline.** ``weights="imagenet"`` finds the files the server prepared (bound
  read-only at ``spec["weights_dir"]``) without a download; a missing or disallowed file fails with a
  message that names it and the command that fetches it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import platform
import random
import sys
import time
import traceback
import urllib.parse

IMPORT_ERRORS = (ImportError,)
PREDICT_BATCH = 64
MAX_SEED = 2**31 - 1
STAND_IN_SUFFIX = ".stand-in"  # marker next to a weights file that is a random-init stand-in (offline development)
PREPARE_COMMAND = "workshop prepare-weights"


class ContractError(Exception):
    """The submission broke the contract in a way that is the participant's to fix."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class WeightsUnavailable(RuntimeError):
    """Pretrained weights that this job cannot load: not prepared on the server, or not allowed here."""


class DownloadUnavailable(RuntimeError):
    """Code in the sandbox tried to download something; there is no network there."""


class TrainingCutShort(Exception):
    """Raised from a callback to leave ``model.fit`` at once when the time is up (caught by the harness)."""


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


class Notes:
    """Plain-language remarks for the participant, each kept once, also printed to the log."""

    def __init__(self):
        self.items: list[str] = []

    def add(self, note: str) -> None:
        if note not in self.items:
            self.items.append(note)
            print(f"[harness] {note}", flush=True)


# --- the data handed to train(data) ------------------------------------------------------------------------


class WorkshopData:
    """What ``train(data)`` receives: batched datasets, image size, class names, the seed, a clock and loggers."""

    def __init__(self, spec: dict, guard: TrainingGuard, seed: int = 0):
        import numpy as np

        self.seed = seed  # Python, NumPy and TensorFlow are seeded with it already; use it for your own generators
        self.image_size = int(spec["image_size"])
        self.class_names = tuple(spec.get("class_names", ("benign", "malignant")))
        self.batch_size = int(spec.get("batch_size", 32))
        self._dir = spec["data_dir"]
        self._guard = guard
        self._np = np
        self.train = self._labelled("train", shuffle=True)
        self.val = self._labelled("val", shuffle=False)

    def seconds_left(self) -> float:
        """Seconds of training time left; the time for predicting the test images is already set aside."""
        return self._guard.seconds_left()

    def log(self, message: object) -> None:
        print(f"[data.log] {message}", flush=True)

    def log_epoch(self, **metrics: float) -> None:
        """Show one epoch of a custom training loop on the submission page (``model.fit`` does this itself)."""
        self._guard.record_epoch(metrics)

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


# --- time budget and live progress ---------------------------------------------------------------------------


def pick_monitor(logs: dict) -> tuple[str, str] | None:
    """The epoch metric that says which weights are best: validation AUC, else validation loss, else loss."""
    finite = [key for key, value in logs.items() if _finite(value) is not None]
    for wanted, mode in (
        (lambda key: key.lower().startswith("val_") and "auc" in key.lower(), "max"),
        (lambda key: key == "val_loss", "min"),
        (lambda key: "auc" in key.lower(), "max"),
        (lambda key: key == "loss", "min"),
    ):
        for key in finite:
            if wanted(key):
                return key, mode
    return None


class BestWeights:
    """The weights of one model at its best epoch so far, kept in memory."""

    def __init__(self, monitor: str, mode: str, value: float, epoch: int, weights: list):
        self.monitor, self.mode, self.value, self.epoch, self.weights = monitor, mode, value, epoch, weights

    def beaten_by(self, value: float) -> bool:
        return value > self.value if self.mode == "max" else value < self.value


class TrainingGuard:
    """The job's clock: counts epochs across every ``fit``, keeps the best weights, decides when to stop."""

    def __init__(self, output: Output, notes: Notes, deadline: float):
        self.output, self.notes, self.deadline = output, notes, deadline
        self.epochs = 0
        self.cut_short = False
        self.best: dict[int, BestWeights] = {}  # id(model) -> its best epoch so far
        self.last_record = time.monotonic()

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def record_epoch(self, metrics: dict, seconds: float | None = None) -> int:
        """Append one epoch to progress.jsonl (the live view); returns the job-wide epoch number."""
        now = time.monotonic()
        self.epochs += 1
        took = now - self.last_record if seconds is None else seconds
        self.last_record = now
        clean = {str(key): _finite(value) for key, value in (metrics or {}).items()}
        self.output.append_progress({"epoch": self.epochs, "seconds": round(took, 3), "metrics": clean})
        return self.epochs

    def remember(self, model, logs: dict, epoch: int) -> None:
        """Keep a copy of the weights when this epoch is the model's best so far."""
        monitor = pick_monitor(logs)
        if monitor is None or model is None:
            return
        key, mode = monitor
        value = _finite(logs[key])
        best = self.best.get(id(model))
        if best is None or best.monitor != key or best.beaten_by(value):
            self.best[id(model)] = BestWeights(key, mode, value, epoch, model.get_weights())

    def restore_best(self, model, current_epoch: int | None) -> None:
        """Put the best epoch's weights back for predicting, and say which ones are used."""
        best = self.best.get(id(model)) if model is not None else None
        if best is None:
            self.notes.add("no epoch finished before the time ran out: predicting with the weights as they are")
            return
        if best.epoch == current_epoch:
            self.notes.add(f"predicting with the weights of epoch {best.epoch} ({best.monitor} {best.value:.4f})")
            return
        try:
            model.set_weights(best.weights)
        except ValueError as error:  # the model changed shape since; keep what it has
            self.notes.add(f"could not restore the best weights ({error}); predicting with the last ones")
            return
        self.notes.add(
            f"restored the weights of epoch {best.epoch}, the best so far ({best.monitor} {best.value:.4f}), "
            "for predicting"
        )

    def stop(self, reason: str) -> None:
        self.cut_short = True
        self.notes.add(f"training was cut short {reason} to leave time for predicting the test images")


def make_progress_callback(guard: TrainingGuard):
    """A Keras callback that reports every epoch and stops ``fit`` in time, between epochs or within one."""
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batch_seconds: float | None = None  # moving average of one training step
            self.val_seconds: float | None = None  # duration of the last validation pass
            self.epoch_started = self.batch_started = self.test_started = time.monotonic()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.monotonic()

        def on_train_batch_begin(self, batch, logs=None):
            self.batch_started = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            took = time.monotonic() - self.batch_started
            self.batch_seconds = took if self.batch_seconds is None else 0.8 * self.batch_seconds + 0.2 * took
            left = guard.seconds_left()
            if left > 1.5 * max(self.batch_seconds, took) + 0.2:  # another step fits, even a slow one
                return
            guard.stop("in the middle of an epoch")
            if self.val_seconds is not None and left > 1.3 * self.val_seconds + 0.5 and self.model is not None:
                self.model.stop_training = True  # validate the partial epoch, then compare it with the best
            else:
                raise TrainingCutShort

        def on_test_begin(self, logs=None):
            self.test_started = time.monotonic()

        def on_test_batch_end(self, batch, logs=None):
            if guard.seconds_left() <= 0.2:
                guard.stop("while validating")
                raise TrainingCutShort

        def on_test_end(self, logs=None):
            self.val_seconds = time.monotonic() - self.test_started

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            took = time.monotonic() - self.epoch_started
            number = guard.record_epoch(logs, seconds=took)
            guard.remember(self.model, logs, number)
            if guard.cut_short:
                guard.restore_best(self.model, number)
                return
            more_epochs = epoch + 1 < int(self.params.get("epochs") or 0)
            if more_epochs and guard.seconds_left() < 1.1 * took and self.model is not None:
                self.model.stop_training = True
                guard.stop(f"after epoch {number}")
                guard.restore_best(self.model, number)

    return ProgressCallback


def install_fit_hook(guard: TrainingGuard) -> None:
    """Make every ``model.fit`` report per-epoch metrics and stop in time, without the participant's help."""
    import keras

    original_fit = keras.Model.fit
    progress_callback = make_progress_callback(guard)

    def fit(self, *args, **kwargs):
        if guard.cut_short or guard.seconds_left() <= 0:
            guard.notes.add("skipped a call to model.fit: the training time was used up")
            return _empty_history(keras)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callback = progress_callback()
        callbacks.append(callback)
        kwargs.setdefault("verbose", 2)
        if args and type(args[0]).__module__.startswith("tensorflow"):
            kwargs.setdefault("shuffle", False)  # our datasets are shuffled already; avoids a Keras warning
        try:
            return original_fit(self, *args, callbacks=callbacks, **kwargs)
        except TrainingCutShort:
            if hasattr(self, "_eval_epoch_iterator"):
                del self._eval_epoch_iterator  # left behind by the interrupted fit
            guard.restore_best(self, None)
            history = getattr(self, "history", None)
            return history if isinstance(history, keras.callbacks.History) else _empty_history(keras)

    keras.Model.fit = fit


def _empty_history(keras):
    from collections import defaultdict

    history = keras.callbacks.History()
    history.history, history.epoch = defaultdict(list), []
    return history


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- pretrained weights, offline ---------------------------------------------------------------------------


class WeightsCache:
    """Serves ``keras.applications`` weight files from the server's read-only folder, never from the network.

    Keras looks for ``$KERAS_HOME/models/<file>`` and ignores a cache folder it cannot write to, so the
    harness makes a writable ``$KERAS_HOME/models`` of links to the files this exercise allows, and answers
    Keras's ``get_file`` from there without a download and without re-checking the hash: the folder is
    trusted, ``workshop prepare-weights`` verified every file when it fetched it.
    """

    def __init__(self, spec: dict, notes: Notes):
        self.source = spec.get("weights_dir")
        self.offline = bool(spec.get("offline", True))
        allowed = spec.get("allowed_weights")
        self.allowed = None if allowed is None else {entry["file"]: entry["architecture"] for entry in allowed}
        self.notes = notes
        self.keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        self.models = os.path.join(self.keras_home, "models")
        self.linked: dict[str, str] = {}

    def prepared(self) -> list[str]:
        if not self.source or not os.path.isdir(self.source):
            return []
        return sorted(
            name
            for name in os.listdir(self.source)
            if not name.endswith(STAND_IN_SUFFIX) and os.path.isfile(os.path.join(self.source, name))
        )

    def link(self) -> None:
        """Link every prepared file this exercise allows into the writable Keras cache."""
        usable = [name for name in self.prepared() if self.allowed is None or name in self.allowed]
        if not usable:
            return
        os.makedirs(self.models, exist_ok=True)
        for name in usable:
            target = os.path.join(self.models, name)
            if not os.path.lexists(target):
                os.symlink(os.path.join(self.source, name), target)
            self.linked[name] = target

    def resolve(self, fname, origin, cache_subdir) -> str | None:
        """The local path for a requested download, or None to let Keras handle it; raises when impossible."""
        name = os.path.basename(str(fname)) if fname else os.path.basename(urllib.parse.urlsplit(origin or "").path)
        if name in self.linked:
            if os.path.exists(os.path.join(self.source, name + STAND_IN_SUFFIX)):
                self.notes.add(
                    f"{name} on this server is a random-init stand-in for offline development, not ImageNet "
                    "weights: expect no gain from pretraining"
                )
            return self.linked[name]
        if not self.offline:
            return None
        if cache_subdir != "models":
            raise DownloadUnavailable(f"there is no network in the sandbox, so {origin} cannot be downloaded")
        if self.allowed is not None and name not in self.allowed:
            raise WeightsUnavailable(self._not_allowed(name))
        raise WeightsUnavailable(
            f"the pretrained weights file {name} is not on this grading server, and the sandbox has no network. "
            f"The instructor fetches the weights every exercise allows with `{PREPARE_COMMAND}`."
        )

    def _not_allowed(self, name: str) -> str:
        if not self.allowed:
            return (
                f"this exercise allows no pretrained weights (Keras asked for {name}): "
                "build the network with weights=None"
            )
        offered = ", ".join(f"{architecture} ({file})" for file, architecture in sorted(self.allowed.items()))
        return (
            f"the pretrained weights file {name} is not allowed in this exercise; it offers {offered}. "
            "Check the architecture, input_shape and include_top=False."
        )

    def install(self) -> None:
        """Answer Keras's ``get_file`` from this cache (applications call it through ``file_utils``)."""
        import keras

        try:
            from keras.src.utils import file_utils
        except ImportError:  # another Keras layout: the links in $KERAS_HOME/models still serve unhashed files
            return
        original_get_file = file_utils.get_file

        def get_file(fname=None, origin=None, *args, cache_subdir="datasets", **kwargs):
            path = self.resolve(fname, origin, cache_subdir)
            if path is not None:
                return path
            return original_get_file(fname, origin, *args, cache_subdir=cache_subdir, **kwargs)

        file_utils.get_file = get_file
        keras.utils.get_file = get_file


# --- running the submission ----------------------------------------------------------------------------------


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
        raise ContractError("contract", "your code defines no function train(data) at the top level")
    return module


def check_model(model) -> None:
    """What ``train`` returned must be a model that can predict: the contract's other half."""
    if model is None:
        raise ContractError(
            "contract", "train(data) returned None; end it with `return model`, the keras.Model you trained"
        )
    if not hasattr(model, "predict"):
        raise ContractError(
            "contract", f"train(data) must return the keras.Model you trained; it returned {model!r:.80}"
        )


def choose_seed(spec: dict) -> int:
    """The job's seed: the spec's, or a fresh random one (recorded in run_info either way)."""
    seed = spec.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED:
        return seed
    return random.SystemRandom().randrange(MAX_SEED + 1)


def seed_python(seed: int) -> None:
    """Seed ``random`` and NumPy before the submission is imported (cheap: no TensorFlow yet)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)


def seed_frameworks(seed: int) -> None:
    """Seed Keras and TensorFlow (and again random and NumPy) before the data pipelines are built."""
    import keras

    keras.utils.set_random_seed(seed)


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


def submission_traceback(error: BaseException, submission_path: str) -> str | None:
    """The traceback starting at the participant's own code, so harness (and importlib) frames do not distract.

    An import error is reported from the participant's ``import`` line on; a contract error raised by the
    harness itself has no traceback worth showing (its message says it all).
    """
    if isinstance(error, ContractError):
        if error.__cause__ is None:
            return None
        error = error.__cause__
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != submission_path:
        tb = tb.tb_next
    lines = traceback.format_exception(type(error), error, tb or error.__traceback__, chain=tb is not None)
    return "".join(lines)


def error_message(error: BaseException) -> str:
    """One line for the participant: the harness's own words for a contract error, else ``Type: message``."""
    if isinstance(error, ContractError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def classify(error: BaseException) -> str:
    if isinstance(error, ContractError):
        return error.kind
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return "out_of_memory"
    return "runtime_error"


def run_info(spec: dict | None = None, seed: int | None = None) -> dict:
    """Versions, device, seed and time limit; TensorFlow only when the job loaded it (importing it costs seconds)."""
    info = {"python": platform.python_version(), "machine": platform.machine()}
    if seed is not None:
        info["seed"] = seed
    if spec and spec.get("time_limit") is not None:
        info["time_limit"] = spec["time_limit"]
    keras = sys.modules.get("keras")
    if keras is not None:
        info["keras"] = getattr(keras, "__version__", "unknown")
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return info
    try:
        info["tensorflow"] = tf.__version__
        info["devices"] = [device.name for device in tf.config.list_logical_devices()]
        info["device"] = describe_device(tf)
    except Exception as error:  # noqa: BLE001 - facts only, never fatal
        info["tensorflow"] = f"unavailable: {error}"
    return info


def describe_device(tf) -> str:
    """What trained the model, in words: the GPU's name, else the CPU's model and how many cores the job had."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu) or {}
            names.append(str(details.get("device_name") or gpu.name))
        return "GPU: " + ", ".join(names)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU: {cpu_model()} ({cores} cores)"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def wait_warm(go_fd: int, ready_fd: int) -> bool:
    """A warm start: import NumPy, TensorFlow and Keras, say so on ``ready_fd``, then wait for the job.

    The host writes the job's code and spec into the (still empty) folders bound here, then ``go NPROC DATA CPU``
    on the pipe ``go_fd`` (the job's process, data-segment and CPU-time limits, which the harness lowers its own
    to; the CPU time its imports took is added, as a cold job's imports come out of its own limit);
    anything else (end of file: the warm sandbox was discarded) ends the harness quietly.
    Both pipes are closed before the submission runs, and the job's clock starts only after the hand-off.
    """
    environment = dict(os.environ)
    import keras  # noqa: F401
    import numpy  # noqa: F401
    import tensorflow  # noqa: F401

    for key in set(os.environ) - set(environment):  # what the imports set: a cold job's environment exactly
        del os.environ[key]
    os.environ.update(environment)
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    with os.fdopen(go_fd, "rb") as handle:
        words = handle.readline(64).split()
    if len(words) != 4 or words[0] != b"go":
        return False
    import resource

    # the sandbox started with room for these imports; the job gets exactly a cold job's process and data limits
    processes, data, cpu = int(words[1]), int(words[2]), int(words[3])
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu += int(usage.ru_utime + usage.ru_stime) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    return True


def cap_gpu_memory(megabytes) -> None:
    """Where several jobs share a GPU, this one gets at most ``megabytes`` of its memory (before any GPU use)."""
    if not megabytes:
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU")[:1]:
        tf.config.set_logical_device_configuration(
            gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(megabytes))]
        )
    print(f"[harness] GPU memory capped at {int(megabytes)} MB (the GPU is shared with other jobs)", flush=True)


def main(spec_path: str, warm_fds: tuple[int, int] | None = None) -> int:
    if warm_fds is not None and not wait_warm(*warm_fds):
        return 0
    started = time.monotonic()
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    output = Output(spec["out_dir"])
    reserve = float(spec.get("predict_reserve_seconds", 10))
    deadline = started + float(spec["time_limit"]) - reserve
    submission_path = os.path.join(spec["code_dir"], f"{spec.get('module', 'submission')}.py")
    notes = Notes()
    status: dict = {"ok": False, "notes": notes.items}
    seed = choose_seed(spec)
    try:
        weights = WeightsCache(spec, notes)
        weights.link()  # before the submission imports Keras, which reads KERAS_HOME once
        cap_gpu_memory(spec.get("gpu_memory_mb"))  # before TensorFlow touches the GPU
        seed_python(seed)
        module = load_submission(spec["code_dir"], spec.get("module", "submission"))
        seed_frameworks(seed)
        guard = TrainingGuard(output, notes, deadline)
        data = WorkshopData(spec, guard, seed)
        install_fit_hook(guard)
        weights.install()
        training = time.monotonic()
        model = module.train(data)
        check_model(model)
        ids, probabilities = predict_test(model, spec["data_dir"], data.image_size)
        write_predictions(output, ids, probabilities)
        status["ok"] = True
        status["train_seconds"] = round(time.monotonic() - training, 3)  # the job's own work: train, predict
    except BaseException as error:  # noqa: BLE001 - every failure is reported, including SystemExit
        trace = submission_traceback(error, submission_path)
        status.update(
            error_kind=classify(error),
            message=error_message(error)[:2000],
            traceback=None if trace is None else trace[-20000:],
        )
        # the traceback is in status.json (the page shows it); the log gets one line, not a second copy
        print(f"[harness] failed: {status['message'][:300]}", file=sys.stderr, flush=True)
    status["run_info"] = run_info(spec, seed)
    if "train_seconds" in status:
        status["run_info"]["train_seconds"] = status.pop("train_seconds")
    if warm_fds is not None:
        status["run_info"]["warm_start"] = True
    status["seconds"] = round(time.monotonic() - started, 3)
    output.write_status(status)
    return 0 if status["ok"] else 1


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--warm":  # harness.py --warm GO_FD READY_FD SPEC (warm slots)
        sys.exit(main(sys.argv[4], warm_fds=(int(sys.argv[2]), int(sys.argv[3]))))
    sys.exit(main(sys.argv[1]))
