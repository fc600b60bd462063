"""Check the bwrap sandbox's GPU slots on a real GPU machine (none in CI: run it by hand, as root).

Usage:
    .venv/bin/python bench/gpu_check.py [--gpu 0]
    (dry run without a GPU: --dev-dir DIR with empty files nvidia0, nvidia1, nvidiactl; the driver checks fail)
For the chosen GPU it runs a small program inside the sandbox exactly as a job runs (same command line,
uid, seccomp filter, cgroups) and checks that
  * the job sees its own /dev/nvidiaN and the control nodes, and no other GPU's node;
  * the CUDA driver inside counts exactly one device (cuInit/cuDeviceGetCount through libcuda);
  * TensorFlow, when this virtualenv has a CUDA build, lists one GPU and multiplies on it;
  * after the job no process holds /dev/nvidiaN (the next job may start);
  * a job on another GPU (when there is one) cannot open this one.
Prints one line per check and exits 1 when any fails. No network is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.sandbox import BwrapSandbox, Limits, SandboxJob, gpu_holders  # noqa: E402

PROGRAM = r"""
import ctypes, json, os
facts = {"dev": sorted(name for name in os.listdir("/dev") if name.startswith("nvidia")),
         "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}
try:
    cuda = ctypes.CDLL("libcuda.so.1")
    count = ctypes.c_int(-1)
    facts["cuInit"] = cuda.cuInit(0)
    facts["cuDeviceGetCount"] = [cuda.cuDeviceGetCount(ctypes.byref(count)), count.value]
except OSError as error:
    facts["libcuda"] = str(error)
others = [name for name in os.listdir("/dev") if name.startswith("nvidia") and name[6:].isdigit()]
facts["open_own"] = []
for name in others:
    try:
        os.close(os.open("/dev/" + name, os.O_RDWR))
        facts["open_own"].append(name)
    except OSError as error:
        facts.setdefault("open_errors", []).append(f"{name}: {error.strerror}")
try:
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    facts["tf_built_with_cuda"] = tf.test.is_built_with_cuda()
    facts["tf_gpus"] = len(gpus)
    if gpus:
        with tf.device("/GPU:0"):
            product = tf.linalg.matmul(tf.ones((512, 512)), tf.ones((512, 512)))
        facts["tf_matmul"] = float(product[0, 0])
except Exception as error:  # noqa: BLE001 - reported, judged on the host
    facts["tf_error"] = f"{type(error).__name__}: {error}"
print("GPUFACTS " + json.dumps(facts), flush=True)
"""


def run_on_gpu(gpu: int, root: Path, dev_dir: Path) -> tuple[dict, list[str]]:
    """Run PROGRAM as a sandboxed job on ``gpu``; returns its facts and the sandbox's notes."""
    job_dir = root / f"job-gpu{gpu}"
    (job_dir / "code").mkdir(parents=True)
    (job_dir / "out").mkdir(mode=0o700)
    os.chown(job_dir / "out", 61095, 61095)
    data = root / "public"
    data.mkdir(exist_ok=True)
    program = root / "gpu_program.py"
    program.write_text(PROGRAM)
    program.chmod(0o644)
    job = SandboxJob(job_dir / "code", job_dir / "out", data, {}, Limits(wall_seconds=300), uid=61095, gpu=gpu)
    sandbox = BwrapSandbox(dev_dir=dev_dir)
    try:
        result = sandbox.run_program(job, program)
    finally:
        sandbox.release(job)
    lines = [line for line in result.log.splitlines() if line.startswith("GPUFACTS ")]
    if not lines:
        raise SystemExit(f"the job on GPU {gpu} reported nothing (exit {result.exit_code}):\n{result.log[-3000:]}")
    return json.loads(lines[-1][len("GPUFACTS ") :]), result.notes


def gpus_on_host(dev_dir: Path) -> list[int]:
    names = (re.fullmatch(r"nvidia(\d+)", path.name) for path in dev_dir.iterdir())
    return sorted(int(match.group(1)) for match in names if match)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", type=int, default=None, help="GPU index (default: the first one)")
    parser.add_argument(
        "--dev-dir", type=Path, default=Path("/dev"), help="device folder; empty files there make a dry run"
    )
    args = parser.parse_args()
    gpus = gpus_on_host(args.dev_dir)
    if not gpus:
        print("FAIL no /dev/nvidiaN on this machine")
        return 1
    gpu = gpus[0] if args.gpu is None else args.gpu
    failures = 0

    def check(name: str, ok: bool, detail: object) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        root = Path(folder)
        root.chmod(0o711)
        facts, notes = run_on_gpu(gpu, root, args.dev_dir)
        own = f"nvidia{gpu}"
        nodes = [name for name in facts["dev"] if name[6:].isdigit()]
        check("only its own GPU node", nodes == [own], facts["dev"])
        check("CUDA_VISIBLE_DEVICES", facts["visible"] == "0", facts["visible"])
        counted = facts.get("cuDeviceGetCount", facts.get("libcuda"))
        check("the driver sees one device", facts.get("cuDeviceGetCount") == [0, 1], counted)
        check("the job can open its GPU", facts["open_own"] == [own], facts.get("open_errors", facts["open_own"]))
        if facts.get("tf_built_with_cuda"):
            computed = facts.get("tf_gpus") == 1 and facts.get("tf_matmul") == 512.0
            check("TensorFlow computes on the GPU", computed, facts)
        else:
            print(f"SKIP TensorFlow: this virtualenv's build has no CUDA ({facts.get('tf_error', 'CPU-only')})")
        holders = gpu_holders(gpu, dev_dir=args.dev_dir)
        check("nothing holds the GPU after the job", not holders and not any("still held" in n for n in notes), holders)
        others = [other for other in gpus if other != gpu]
        if others:
            other_facts, _ = run_on_gpu(others[0], root, args.dev_dir)
            name = f"a job on GPU {others[0]} has no node of GPU {gpu}"
            check(name, own not in other_facts["dev"], other_facts["dev"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
