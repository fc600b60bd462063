"""Probe run INSIDE the sandbox on one GPU by ``workshop sandbox check``: which GPUs a job can see and use.

Standard library only (it runs as ``python -I``, like the harness). It lists the NVIDIA device nodes, tries to
open each numbered one, and asks the CUDA driver (``libcuda.so.1`` through ctypes, as TensorFlow does) how
many devices it can use. Writes ``gpu.json`` to the output folder; the host judges it.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys


def driver_facts(library: str) -> dict:
    """cuInit's result and cuDeviceGetCount's [result, count]; or why the driver library could not be loaded."""
    try:
        cuda = ctypes.CDLL(library)
    except OSError as error:
        return {"libcuda": str(error)}
    count = ctypes.c_int(-1)
    facts = {"cuInit": cuda.cuInit(0)}
    facts["cuDeviceGetCount"] = [cuda.cuDeviceGetCount(ctypes.byref(count)), count.value]
    return facts


def main(spec_path: str) -> None:
    with open(spec_path) as handle:
        spec = json.load(handle)
    nodes = sorted(name for name in os.listdir("/dev") if name.startswith("nvidia"))
    opened, refused = [], {}
    for name in nodes:
        if name[len("nvidia") :].isdigit():
            try:
                os.close(os.open("/dev/" + name, os.O_RDWR))
                opened.append(name)
            except OSError as error:
                refused[name] = error.strerror
    facts = {
        "nodes": nodes,
        "opened": opened,
        "refused": refused,
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        **driver_facts(spec.get("libcuda") or "libcuda.so.1"),
    }
    with open(os.path.join(spec["out_dir"], "gpu.json"), "w") as handle:
        json.dump(facts, handle)


if __name__ == "__main__":
    main(sys.argv[1])
