"""Keras ImageNet weights the exercises may use: which files, where Keras fetches them, and the offline cache.

File names, URLs and hashes are Keras's own (``keras/src/applications/``, Keras 3); a test checks them
against the application code, so a Keras upgrade that renames a file fails loudly instead of silently
downloading nothing. ``workshop prepare-weights`` fetches the files into ``<KERAS_HOME>/models`` with
Keras's ``get_file`` (which checks the hash where Keras publishes one) and loads each into its
architecture; the sandbox binds that folder read-only and the harness serves the files from it.

TensorFlow is imported only inside the functions that need it, so the catalog loader stays light.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# a marker next to a weights file that is a random-init stand-in (tests, offline demos); the harness knows it too
STAND_IN_SUFFIX = ".stand-in"
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)
# what the Normalization layer of Keras's EfficientNet files holds (keras/src/applications/efficientnet.py)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STDDEV = (0.229, 0.224, 0.225)

MOBILENET_V2_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
MOBILENET_V3_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
EFFICIENTNET_URL = "https://storage.googleapis.com/keras-applications/"


@dataclass(frozen=True)
class WeightsFile:
    """One ImageNet weights file of a Keras application, without the classification top."""

    architecture: str  # the keras.applications name, e.g. "MobileNetV2"
    file_name: str  # the name Keras looks for in $KERAS_HOME/models
    url: str
    file_hash: str | None  # Keras's own hash (md5 or sha256); None where Keras publishes none
    input_size: int  # the square input the weights are meant for (only MobileNetV2 has one file per size)
    module: str  # the keras.applications module with its preprocess_input, e.g. "mobilenet_v2"

    def as_spec(self) -> dict:
        """How the harness sees it in the job spec."""
        return {"architecture": self.architecture, "file": self.file_name}


def mobilenet_v2_file(image_size: int) -> WeightsFile:
    """MobileNetV2, alpha 1.0: one file per input size; Keras falls back to the 224 file for other sizes."""
    rows = image_size if image_size in MOBILENET_V2_SIZES else 224
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    return WeightsFile("MobileNetV2", name, MOBILENET_V2_URL + name, None, rows, "mobilenet_v2")


def mobilenet_v3_small_file(image_size: int) -> WeightsFile:
    """MobileNetV3Small, alpha 1.0, not minimalistic: one file for every input size."""
    name = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    md5 = "d3e8ec802a04aa4fc771ee12a9a9b836"
    return WeightsFile("MobileNetV3Small", name, MOBILENET_V3_URL + name, md5, image_size, "mobilenet_v3")


def efficientnet_b0_file(image_size: int) -> WeightsFile:
    """EfficientNetB0: one file for every input size (its rescaling and normalisation are built in)."""
    name = "efficientnetb0_notop.h5"
    md5 = "50bc09e76180e00e4465e1a485ddc09d"
    return WeightsFile("EfficientNetB0", name, EFFICIENTNET_URL + name, md5, image_size, "efficientnet")


# architecture name -> the weights file it needs at an exercise's image size
ARCHITECTURES: dict[str, Callable[[int], WeightsFile]] = {
    "MobileNetV2": mobilenet_v2_file,
    "MobileNetV3Small": mobilenet_v3_small_file,
    "EfficientNetB0": efficientnet_b0_file,
}


class UnknownArchitecture(ValueError):
    """An exercise names weights this module does not know."""


def weights_file(architecture: str, image_size: int) -> WeightsFile:
    try:
        return ARCHITECTURES[architecture](image_size)
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise UnknownArchitecture(f"unknown Keras application {architecture!r}; known: {known}") from None


def exercise_weights(exercise) -> list[WeightsFile]:
    """The files an exercise allows, at its image size (``exercise`` is a grader.exercises.Exercise)."""
    return [weights_file(name, exercise.image_size) for name in exercise.allowed_weights]


def catalog_weights(exercises) -> list[WeightsFile]:
    """Every file any exercise allows, each once, in a stable order."""
    files: dict[str, WeightsFile] = {}
    for exercise in exercises:
        for item in exercise_weights(exercise):
            files.setdefault(item.file_name, item)
    return sorted(files.values(), key=lambda item: item.file_name)


def is_stand_in(models_dir: Path, item: WeightsFile) -> bool:
    return (Path(models_dir) / (item.file_name + STAND_IN_SUFFIX)).exists()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_application(item: WeightsFile, weights: str | None = None):
    """The architecture without its top at the file's input size; ``weights`` is None or a file path."""
    import keras

    constructor = getattr(keras.applications, item.architecture)
    return constructor(input_shape=(item.input_size, item.input_size, 3), include_top=False, weights=weights)


def build_as_imagenet(item: WeightsFile, path: Path):
    """The application exactly as ``weights="imagenet"`` builds it, with Keras's download answered by ``path``.

    Returns the model and what Keras asked for (file name, URL, hash), so callers can check that this
    module's names are still Keras's. Some architectures differ with ``"imagenet"`` (EfficientNet adds a
    rescaling layer), so this is the only faithful way to load or to make a stand-in.
    """
    import keras
    from keras.src.utils import file_utils

    requests: list[dict] = []

    def answer(fname=None, origin=None, *args, **kwargs):
        requests.append({"file_name": fname, "url": origin, "file_hash": kwargs.get("file_hash"), **kwargs})
        return str(path)

    original = file_utils.get_file
    file_utils.get_file = answer
    try:
        constructor = getattr(keras.applications, item.architecture)
        model = constructor(input_shape=(item.input_size, item.input_size, 3), include_top=False, weights="imagenet")
    finally:
        file_utils.get_file = original
    return model, requests


def verify_weights(item: WeightsFile, path: Path) -> int:
    """Load ``path`` the way a job does (fails on a wrong or truncated file); returns the parameter count."""
    model, requests = build_as_imagenet(item, path)
    asked = [request["file_name"] for request in requests]
    if asked != [item.file_name]:
        raise ValueError(f"Keras asked for {asked}, not {item.file_name}: grader/weights.py needs updating")
    return int(model.count_params())


@dataclass(frozen=True)
class PreparedFile:
    """What ``prepare_weights`` did with one file."""

    item: WeightsFile
    path: Path
    action: str  # "present", "downloaded" or "failed"
    sha256: str | None = None
    parameters: int | None = None
    error: str | None = None


def fetch_weights(item: WeightsFile, models_dir: Path) -> Path:
    """Download one file with Keras's own ``get_file`` (hash checked where Keras has one) into ``models_dir``."""
    from keras.utils import get_file

    models_dir.mkdir(parents=True, exist_ok=True)
    marker = models_dir / (item.file_name + STAND_IN_SUFFIX)
    if marker.exists():  # a stand-in never passes for the real file
        (models_dir / item.file_name).unlink(missing_ok=True)
        marker.unlink()
    fetched = Path(
        get_file(
            item.file_name,
            item.url,
            file_hash=item.file_hash,
            cache_subdir=str(models_dir.resolve()),
            cache_dir=str(models_dir.resolve().parent),
        )
    )
    target = models_dir / item.file_name
    if fetched.resolve() != target.resolve():  # Keras fell back to another cache folder
        shutil.copyfile(fetched, target)
    return target


def prepare_weights(
    items: list[WeightsFile], models_dir: Path, *, fetch: Callable[[WeightsFile, Path], Path] = fetch_weights
) -> list[PreparedFile]:
    """Make every file present in ``models_dir`` and check that it loads; one failure does not stop the rest."""
    results = []
    for item in items:
        path = Path(models_dir) / item.file_name
        action = "present" if path.is_file() and not is_stand_in(models_dir, item) else "downloaded"
        try:
            if action == "downloaded":
                path = fetch(item, Path(models_dir))
            parameters = verify_weights(item, path)
        except Exception as error:  # noqa: BLE001 - reported per file, the command exits non-zero
            results.append(PreparedFile(item, path, "failed", error=f"{type(error).__name__}: {error}"[:500]))
            continue
        results.append(PreparedFile(item, path, action, sha256=file_sha256(path), parameters=parameters))
    return results


def make_readable(models_dir: Path) -> None:
    """Let the sandbox's unprivileged uid read the cache, whatever the umask of the process that filled it."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return
    models_dir.chmod(0o755)
    for path in models_dir.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(0o644)


def write_stand_in(item: WeightsFile, models_dir: Path, calibration_images=None, seed: int = 0) -> Path:
    """Random-init weights of the right architecture under Keras's file name, marked as a stand-in.

    For tests and offline demos only: loading works exactly as with the real file, but the network has
    learnt nothing from ImageNet. Its batch-normalisation statistics are calibrated on
    ``calibration_images`` (uint8, N x H x W x 3; smooth random images when None), so that the frozen
    network gives random but informative features instead of constants: uncalibrated, the activations
    of a random MobileNetV2 die out before its last layer. ``fetch_weights`` replaces a stand-in.
    """
    import keras
    import numpy as np

    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / item.file_name
    keras.utils.set_random_seed(seed)
    save_legacy_h5(build_application(item, weights=None), path)  # random init, then built as jobs build it
    model, _requests = build_as_imagenet(item, path)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Normalization):  # EfficientNet: the input statistics of the real file
            layer.set_weights([np.array(IMAGENET_MEAN), np.array(IMAGENET_STDDEV), np.array(0)])
            layer.finalize_state()
    images = calibration_images if calibration_images is not None else smooth_random_images(64, seed)
    images = keras.ops.image.resize(np.asarray(images[:64], dtype="float32"), (item.input_size, item.input_size))
    calibrate_batch_norm(model, getattr(keras.applications, item.module).preprocess_input(images))
    save_legacy_h5(model, path)
    (models_dir / (item.file_name + STAND_IN_SUFFIX)).write_text(
        "random-init stand-in for offline development; replace with `workshop prepare-weights`\n", encoding="utf-8"
    )
    return path


def save_legacy_h5(model, path: Path) -> None:
    """Weights in the legacy .h5 layout that Keras's applications load (``save_weights`` only writes the new one)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)


def smooth_random_images(count: int, seed: int):
    """Blotchy random colour images (uint8, 32 px) for calibrating a stand-in when no data set is at hand."""
    import keras
    import numpy as np

    coarse = np.random.default_rng(seed).uniform(0.0, 255.0, (count, 6, 6, 3)).astype("float32")
    return keras.ops.image.resize(coarse, (32, 32)).numpy().astype("uint8")


def calibrate_batch_norm(model, images) -> None:
    """Set every BatchNormalization's moving statistics to those of ``images``, in one training-mode pass."""
    import keras

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0  # moving statistic = this batch's statistic
    model(images, training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
