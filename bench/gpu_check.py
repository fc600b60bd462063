"""Every GPU check of issues 13 and 15 in one run, on a machine with NVIDIA GPUs (run it by hand, as root).

Usage:
    .venv/bin/python bench/gpu_check.py [--gpu N] [--train 1000] [--no-timing]
    .venv/bin/python bench/gpu_check.py --dev-dir DIR     # dry run: empty files nvidia0, nvidia1, nvidiactl in DIR

1. GPUs found: nvidia-smi's list (index, name, memory, driver, device node).
2. Each GPU: a probe job through the bwrap sandbox sees and opens only its own /dev/nvidiaN, and the CUDA driver
   inside counts one device (the rows of `workshop sandbox check`).
3. TensorFlow inside the sandbox on the chosen GPU: a CUDA build, one GPU listed, a matrix product on it; nothing
   holds the GPU once the job is over.
4. The reference transfer-learning solution graded through the sandbox on the GPU and on the CPU, and bare (no
   sandbox) on the GPU: run time and score of each, GPU against CPU and sandboxed against bare (issue 15). On a
   synthetic set made here (--train images at 96 px), with the ImageNet weights of --keras-home where they are
   cached, else stand-in weights (run times hold, scores do not).
5. Packed GPUs (issue 15): the same solution, 2 jobs a slot, at 1, 2 and 4 slots on the GPU (--slots-per-gpu):
   jobs per hour per GPU, each job capped at its share of the GPU's memory, warm slots on.
Prints one summary table and exits 1 when any check fails. Without a GPU it says "no GPU: skipped the GPU rows"
and exits 0. About 3 minutes on one GPU of a 16-core machine (well under 8); no network is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.sandbox import BwrapSandbox, Limits, SandboxJob, gpu_holders  # noqa: E402
from grader.sandbox.check import run_gpu_checks  # noqa: E402
from grader.sandbox.gpus import Gpu, GpuError, list_gpus  # noqa: E402

JOB_UID = 61095  # a slot uid of its own, so that a running worker's slots are left alone

TF_PROGRAM = r"""
import json
facts = {}
try:
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    facts["tf_version"] = tf.__version__
    facts["tf_built_with_cuda"] = tf.test.is_built_with_cuda()
    facts["tf_gpus"] = len(gpus)
    if gpus:
        with tf.device("/GPU:0"):
            product = tf.linalg.matmul(tf.ones((512, 512)), tf.ones((512, 512)))
        facts["tf_matmul"] = float(product[0, 0])
        facts["tf_device"] = product.device
except Exception as error:  # noqa: BLE001 - reported, judged on the host
    facts["tf_error"] = f"{type(error).__name__}: {error}"
print("GPUFACTS " + json.dumps(facts), flush=True)
"""


@dataclass
class Row:
    name: str
    result: str  # PASS, FAIL, SKIP or a measurement's own word (TIME)
    detail: str


class Table:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, name: str, result: str | bool, detail: object) -> None:
        word = result if isinstance(result, str) else ("PASS" if result else "FAIL")
        self.rows.append(Row(name, word, str(detail)))
        print(f"{word:4} {name}: {detail}", flush=True)

    def print(self) -> None:
        width = max(len(row.name) for row in self.rows)
        print("\n" + "=" * 40 + " summary " + "=" * 40)
        print(f"{'check':{width}}  result  detail")
        print(f"{'-' * width}  ------  ------")
        for row in self.rows:
            print(f"{row.name:{width}}  {row.result:6}  {row.detail}")
        counts = {word: sum(row.result == word for row in self.rows) for word in ("PASS", "FAIL", "SKIP")}
        print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")

    @property
    def failed(self) -> bool:
        return any(row.result == "FAIL" for row in self.rows)


def find_gpus(dev_dir: Path | None, table: Table) -> list[Gpu]:
    """nvidia-smi's GPUs; in a dry run (--dev-dir without nvidia-smi) one stand-in per fake /dev/nvidiaN."""
    try:
        gpus = list_gpus()
    except GpuError as error:
        table.add("GPUs found", False, error)
        return []
    if not gpus and dev_dir is not None:
        numbers = sorted(int(m.group(1)) for p in dev_dir.iterdir() if (m := re.fullmatch(r"nvidia(\d+)", p.name)))
        gpus = [Gpu(number, "dry run (fake device node)", None, "none", number) for number in numbers]
    if gpus:
        table.add("GPUs found", True, "; ".join(f"{gpu.describe()} (/dev/{gpu.device_node})" for gpu in gpus))
    return gpus


def run_tensorflow_job(gpu: int, root: Path, sandbox: BwrapSandbox) -> tuple[dict, list[str], float]:
    """TF_PROGRAM as a sandboxed job on ``gpu``: its facts, the sandbox's notes and the seconds it took."""
    job_dir = root / f"tf-job-gpu{gpu}"
    (job_dir / "code").mkdir(parents=True)
    (job_dir / "out").mkdir(mode=0o700)
    os.chown(job_dir / "out", JOB_UID, JOB_UID)
    data = root / "public"
    data.mkdir(exist_ok=True)
    program = root / "tf_program.py"
    program.write_text(TF_PROGRAM)
    program.chmod(0o644)
    job = SandboxJob(job_dir / "code", job_dir / "out", data, {}, Limits(wall_seconds=300), uid=JOB_UID, gpu=gpu)
    started = time.monotonic()
    try:
        result = sandbox.run_program(job, program)
    finally:
        sandbox.release(job)
    lines = [line for line in result.log.splitlines() if line.startswith("GPUFACTS ")]
    facts = json.loads(lines[-1][len("GPUFACTS ") :]) if lines else {"tf_error": f"no facts: {result.log[-600:]}"}
    return facts, result.notes, time.monotonic() - started


def check_tensorflow(gpu: Gpu, root: Path, dev_dir: Path, table: Table) -> bool:
    """TensorFlow in the sandbox on ``gpu``; returns whether it computed there (the timing rows need it)."""
    sandbox = BwrapSandbox(dev_dir=dev_dir)
    try:
        facts, notes, seconds = run_tensorflow_job(gpu.index, root, sandbox)
    except Exception as error:  # noqa: BLE001 - the table says why
        table.add(f"TensorFlow on GPU {gpu.index} in the sandbox", False, f"the job did not run: {error}")
        return False
    if "tf_error" in facts and "tf_version" not in facts:
        table.add(f"TensorFlow on GPU {gpu.index} in the sandbox", "SKIP", f"no TensorFlow: {facts['tf_error']}")
        return False
    if not facts.get("tf_built_with_cuda"):
        why = f"TensorFlow {facts.get('tf_version')} has no CUDA here (make install on a GPU host installs it)"
        table.add(f"TensorFlow on GPU {gpu.index} in the sandbox", "SKIP", why)
        return False
    computed = facts.get("tf_gpus") == 1 and facts.get("tf_matmul") == 512.0
    detail = f"{facts.get('tf_gpus')} GPU listed, matmul {facts.get('tf_matmul')} on {facts.get('tf_device')}"
    table.add(f"TensorFlow on GPU {gpu.index} in the sandbox", computed, f"{detail} ({seconds:.1f} s)")
    held = gpu_holders(gpu.index, dev_dir=dev_dir) or [note for note in notes if "still held" in note]
    table.add(f"nothing holds GPU {gpu.index} after TensorFlow's job", not held, held or "free")
    return computed


def prepare_grading(root: Path, train: int, keras_home: Path, table: Table):
    """A synthetic data set and the weights for the transfer-learning exercise; (exercise, data set, weights dir)."""
    from grader.data import dataset_paths
    from grader.data.synth import generate_synthetic
    from grader.exercises import load_catalog
    from grader.weights import exercise_weights, is_stand_in, write_stand_in

    exercise = load_catalog(ROOT / "exercises")["transfer-learning"]
    data = dataset_paths(root / "data", "bench")
    generate_synthetic(data, train=train, val=max(100, train // 5), test=max(200, train // 2), size=96)
    (item,) = exercise_weights(exercise)
    cached = keras_home / "models"
    if (cached / item.file_name).is_file() and not is_stand_in(cached, item):
        table.add("weights", "INFO", f"ImageNet {item.file_name} from {cached}")
        return exercise, data, cached
    models = root / "keras" / "models"
    write_stand_in(item, models)
    table.add("weights", "INFO", f"stand-in {item.file_name} (none cached in {cached}): times hold, scores do not")
    return exercise, data, models


def time_reference(gpu: Gpu, root: Path, train: int, keras_home: Path, table: Table) -> tuple:
    """The reference transfer-learning solution: sandboxed on the GPU, sandboxed on the CPU, bare on the GPU."""
    from grader.grading import GradingSettings, grade

    (root / "data").mkdir(mode=0o755)
    exercise, data, weights = prepare_grading(root, train, keras_home, table)
    code = (ROOT / "exercises" / "transfer-learning" / "solution.py").read_text(encoding="utf-8")
    runs = {"GPU, sandboxed": ("bwrap", gpu.index), "CPU, sandboxed": ("bwrap", None), "GPU, bare": ("none", gpu.index)}
    seconds = {}
    for label, (backend, device) in runs.items():
        settings = GradingSettings(sandbox=backend, work_dir=root / "jobs", weights_dir=weights)
        started = time.monotonic()
        result = grade(code, exercise, data, settings, uid=JOB_UID, gpu=device, time_limit=400, seed=15)
        took = time.monotonic() - started
        name = f"transfer-learning reference, {label}"
        if result.status != "done":
            table.add(name, False, f"{result.error_kind}: {(result.message or '')[:300]}")
            continue
        seconds[label] = took
        ran_on = result.run_info.get("device", "?")
        table.add(name, "TIME", f"{took:.1f} s, ROC AUC {result.public_score:.3f}, device {ran_on}")
    if "GPU, sandboxed" in seconds and "CPU, sandboxed" in seconds:
        ratio = seconds["CPU, sandboxed"] / seconds["GPU, sandboxed"]
        table.add("transfer-learning: CPU time / GPU time", "TIME", f"{ratio:.2f}x ({train} training images)")
    if "GPU, sandboxed" in seconds and "GPU, bare" in seconds:
        ratio = seconds["GPU, sandboxed"] / seconds["GPU, bare"]
        per_hour = 3600 / seconds["GPU, sandboxed"]
        table.add("transfer-learning: sandboxed / bare on the GPU", "TIME", f"{ratio:.2f}x; {per_hour:.0f} jobs/h/GPU")
    return exercise, data, weights


def time_packed(gpu: Gpu, root: Path, prepared: tuple, packings: list[int], table: Table) -> None:
    """Issue 15: the reference solution's jobs per hour on one GPU at 1, 2 and 4 slots per GPU (2 jobs a slot)."""
    from dataclasses import replace

    import throughput  # bench/throughput.py, beside this file

    from grader.grading import GradingSettings

    exercise, data, weights = prepared  # time_reference's data set and weights
    code = (ROOT / "exercises" / "transfer-learning" / "solution.py").read_text(encoding="utf-8")
    base = GradingSettings(sandbox="bwrap", work_dir=root / "jobs", weights_dir=weights, warm_slots=True)
    for packing in packings:
        settings = replace(base, slots_per_gpu=packing)
        gpus = (gpu.index,) * packing
        queue, _busy = throughput.run_queue([code] * (2 * packing), settings, packing, gpus, exercise, data)
        wall = max(queue.finished.values()) - min(queue.submitted.values())
        failed = [result for result in queue.results.values() if result is None or result.status != "done"]
        name = f"transfer-learning, {packing} slot(s) per GPU"
        if failed:
            first = failed[0]
            table.add(name, False, f"{len(failed)} failed; {first and first.error_kind}: {first and first.message}")
            continue
        table.add(name, "TIME", f"{len(queue.finished) / wall * 3600:.0f} jobs/h/GPU ({len(queue.finished)} jobs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", type=int, default=None, help="GPU index for the TensorFlow and timing rows")
    parser.add_argument("--dev-dir", type=Path, default=None, help="device folder of a dry run (fake nodes)")
    parser.add_argument("--train", type=int, default=1000, help="training images of the timing runs")
    keras_home = Path(os.environ.get("WORKSHOP_KERAS_HOME", ROOT / "instance" / "keras"))
    parser.add_argument("--keras-home", type=Path, default=keras_home, help="where cached ImageNet weights are")
    parser.add_argument("--no-timing", action="store_true", help="leave out the reference solution's runs")
    parser.add_argument("--slots-per-gpu", default="1,2,4", help="packed-GPU rows (issue 15); empty: none")
    args = parser.parse_args(argv)
    # this process imports TensorFlow for stand-in weights: it must not take a GPU, which the jobs then wait for
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    table = Table()
    started = time.monotonic()
    gpus = find_gpus(args.dev_dir, table)
    if not gpus:
        if not table.failed:
            table.add("GPUs found", "SKIP", "no GPU: skipped the GPU rows (nvidia-smi lists none or is missing)")
        table.print()
        return 1 if table.failed else 0
    chosen = next((gpu for gpu in gpus if gpu.index == args.gpu), None) if args.gpu is not None else gpus[0]
    if chosen is None:
        table.add("chosen GPU", False, f"GPU {args.gpu} is not on this host")
        table.print()
        return 1
    dev_dir = args.dev_dir or Path("/dev")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        for row in run_gpu_checks("bwrap", gpus, uid=JOB_UID, work_dir=root, options={"dev_dir": dev_dir}):
            table.add(row.name, row.ok, row.detail)
        computed = check_tensorflow(chosen, root, dev_dir, table)
        if args.no_timing or args.dev_dir is not None or not computed:
            why = "--no-timing" if args.no_timing else "dry run" if args.dev_dir else "TensorFlow did not compute on it"
            table.add("transfer-learning reference, GPU vs CPU", "SKIP", why)
        else:
            prepared = time_reference(chosen, root, args.train, args.keras_home, table)
            packings = [int(part) for part in args.slots_per_gpu.split(",") if part.strip()]
            if packings:
                time_packed(chosen, root, prepared, packings, table)
        shutil.rmtree(root / "jobs", ignore_errors=True)
    table.add("this check's own run time", "TIME", f"{time.monotonic() - started:.0f} s")
    table.print()
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
