"""What the bwrap sandbox costs: one trivial submission graded end to end through bwrap and through none.

Usage (as root, bubblewrap installed):
    .venv/bin/python bench/sandbox_overhead.py [--runs 5] [--size 64]
Generates a small synthetic data set in a temporary folder, alternates the two backends run by run
(so drift in the machine's load hits both alike), and prints every time, both medians and their ratio.
Target: the sandbox costs at most 10% more than running the harness without it. No network is used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.data import dataset_paths  # noqa: E402
from grader.data.synth import generate_synthetic  # noqa: E402
from grader.exercises import load_catalog  # noqa: E402
from grader.grading import GradingSettings, grade  # noqa: E402

# the smallest honest submission: one Dense layer on pooled pixels (also `workshop grade`-able)
TRIVIAL = (Path(__file__).resolve().parent / "trivial_submission.py").read_text(encoding="utf-8")


def time_one(backend: str, root: Path, exercise) -> float:
    started = time.monotonic()
    settings = GradingSettings(sandbox=backend, work_dir=root)
    result = grade(TRIVIAL, exercise, dataset_paths(root, "bench"), settings, uid=61088)
    took = time.monotonic() - started
    if result.status != "done":
        raise SystemExit(f"{backend}: the trivial submission failed: {result.error_kind} {result.message}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=64, help="stored image size of the synthetic set")
    args = parser.parse_args()
    exercise = load_catalog(ROOT / "exercises")["cnn-from-scratch"]
    times: dict[str, list[float]] = {"bwrap": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        generate_synthetic(dataset_paths(root, "bench"), seed=3, train=200, val=50, test=200, size=args.size)
        time_one("none", root, exercise)  # warm the page cache for both (TensorFlow's files), not counted
        for run in range(args.runs):
            for backend in ("bwrap", "none") if run % 2 == 0 else ("none", "bwrap"):
                times[backend].append(time_one(backend, root, exercise))
                print(f"run {run + 1} {backend:5} {times[backend][-1]:6.2f} s", flush=True)
    sandboxed, plain = statistics.median(times["bwrap"]), statistics.median(times["none"])
    print(f"median bwrap {sandboxed:.2f} s, none {plain:.2f} s, ratio {sandboxed / plain:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
