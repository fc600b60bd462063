"""GPU discovery through nvidia-smi (a stand-in here) and the choice of GPUs for worker slots (``--gpus``)."""

from __future__ import annotations

import pytest
from sandbox_jobs import stub_nvidia_smi

from grader.sandbox.gpus import Gpu, GpuError, choose_gpus, list_gpus, parse_gpus

TWO_GPUS = "0, NVIDIA H200, 143771, 580.159.03, 0\n1, NVIDIA H200, 143771, 580.159.03, 1\n"


def gpus(*indices: int) -> list[Gpu]:
    return [Gpu(index, "NVIDIA H200", 143771, "580.159.03", index) for index in indices]


def test_nvidia_smi_is_asked_for_index_name_memory_driver_and_device_node(tmp_path, monkeypatch):
    log = stub_nvidia_smi(tmp_path, monkeypatch, f"printf '{TWO_GPUS}'")
    assert list_gpus() == gpus(0, 1)
    assert log.read_text().split() == [
        "--query-gpu=index,name,memory.total,driver_version,minor_number",
        "--format=csv,noheader,nounits",
    ]
    assert gpus(0)[0].describe() == "GPU 0: NVIDIA H200, 140 GiB, driver 580.159.03"


def test_no_nvidia_smi_means_no_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here, even on a host that has one
    assert list_gpus() == []


def test_a_failing_nvidia_smi_says_why(tmp_path, monkeypatch):
    stub_nvidia_smi(
        tmp_path,
        monkeypatch,
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9',
    )
    with pytest.raises(GpuError, match=r"nvidia-smi failed \(exit 9\): NVIDIA-SMI has failed because"):
        list_gpus()


def test_unknown_fields_and_odd_lines():
    listed = parse_gpus("0, Tesla T4, [N/A], 535.1, [N/A]\n\n")
    assert listed == [Gpu(0, "Tesla T4", None, "535.1", None)]
    assert listed[0].device_node == "nvidia0" and "memory unknown" in listed[0].describe()
    with pytest.raises(GpuError, match="not a GPU"):
        parse_gpus("No devices were found\n")


def test_the_default_and_all_are_every_gpu_found():
    assert choose_gpus(None, gpus(0, 1)) == gpus(0, 1)
    assert choose_gpus("all", gpus(0, 1)) == gpus(0, 1)
    assert choose_gpus(None, []) == []  # no GPU: CPU slots, as before


def test_none_and_chosen_indices():
    assert choose_gpus("none", gpus(0, 1, 2)) == []
    assert choose_gpus("0,2", gpus(0, 1, 2)) == gpus(0, 2)
    assert choose_gpus(" 2 , 0 ", gpus(0, 1, 2)) == gpus(2, 0)


@pytest.mark.parametrize(
    ("choice", "found", "message"),
    [
        ("3", gpus(0, 1), "GPU 3 is not on this host: found 0, 1"),
        ("0", [], "GPU 0 is not on this host: found none (nvidia-smi lists no GPU)"),
        ("all", [], "--gpus all: nvidia-smi lists no GPU on this host"),
        ("0,0", gpus(0, 1), "names a GPU twice"),
        ("first", gpus(0, 1), "give all, none, or GPU indices such as 0,2"),
        (",", gpus(0, 1), "give all, none, or GPU indices such as 0,2"),
    ],
)
def test_choices_this_host_cannot_give_are_refused_in_plain_words(choice, found, message):
    with pytest.raises(GpuError) as refused:
        choose_gpus(choice, found)
    assert message in str(refused.value)


def test_a_gpu_whose_device_node_has_another_number_is_refused():
    """In a container given GPU 3 of a host, nvidia-smi calls it 0 but its node is /dev/nvidia3: binding
    /dev/nvidia0 would give the job nothing (or another GPU), so no slot is made for it."""
    moved = [Gpu(0, "NVIDIA H200", 143771, "580.159.03", minor=3)]
    with pytest.raises(GpuError, match=r"GPU 0 \(NVIDIA H200\) is /dev/nvidia3 on this host, not /dev/nvidia0"):
        choose_gpus(None, moved)
    assert choose_gpus("none", moved) == []
