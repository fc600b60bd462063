"""Images per second that ``data.train`` delivers to ``model.fit`` vs raw reads of the memory-mapped array.

Three measurements on the same generated data set, in one run:

* ``pipeline``  -- ``model.fit`` on the harness's streaming tf.data pipeline (what ``data.train`` is);
* ``raw fit``   -- ``model.fit`` on the NumPy array read from the memory map in one go (the whole set in RAM);
* ``raw read``  -- only reading the memory-mapped array batch by batch (no model), the upper bound.

The target is pipeline / raw fit >= 0.8: streaming from disk costs little next to feeding arrays from memory.
Usage: .venv/bin/python bench/data_pipeline.py [--images 2000] [--size 96] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def make_arrays(folder: Path, count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A memory-mapped uint8 image array on disk, like a data set's public/train.npy."""
    from grader.data.layout import load_images, open_image_array

    rng = np.random.default_rng(0)
    images = open_image_array(folder / "train.npy", count, size)
    for start in range(0, count, 256):
        stop = min(count, start + 256)
        images[start:stop] = rng.integers(0, 256, (stop - start, size, size, 3), dtype=np.uint8)
    images.flush()
    labels = rng.integers(0, 2, count).astype("float32")
    return load_images(folder / "train.npy"), labels


def trivial_model(size: int):
    import keras

    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    model.compile("adam", "binary_crossentropy")
    return model


def images_per_second(run, count: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=96, help="stored size = image size (no resizing)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from grader.harness import image_dataset

    with tempfile.TemporaryDirectory() as folder:
        images, labels = make_arrays(Path(folder), args.images, args.size)
        pipeline = image_dataset(images, labels, args.size, args.batch, shuffle=True)
        model = trivial_model(args.size)
        model.fit(pipeline, epochs=1, verbose=0, shuffle=False)  # warm up: tracing, thread pools

        def fit_pipeline():
            model.fit(pipeline, epochs=1, verbose=0, shuffle=False)

        def fit_raw():
            model.fit(np.asarray(images), labels, batch_size=args.batch, epochs=1, verbose=0, shuffle=True)

        def read_raw():
            for start in range(0, len(images), args.batch):
                np.array(images[start : start + args.batch], copy=True).sum()  # force the pages to be read

        streamed = images_per_second(fit_pipeline, args.images, args.repeats)
        raw_fit = images_per_second(fit_raw, args.images, args.repeats)
        raw_read = images_per_second(read_raw, args.images, args.repeats)

    print(f"{args.images} images of {args.size} px, batch {args.batch}, median of {args.repeats}")
    print(f"pipeline (data.train -> fit): {streamed:10.0f} images/s")
    print(f"raw fit (array -> fit):       {raw_fit:10.0f} images/s")
    print(f"raw read (memmap only):       {raw_read:10.0f} images/s")
    print(f"ratio pipeline / raw fit:     {streamed / raw_fit:10.2f}  (target >= 0.8)")
    print(f"ratio pipeline / raw read:    {streamed / raw_read:10.3f}  (reading is not the bottleneck)")


if __name__ == "__main__":
    main()
