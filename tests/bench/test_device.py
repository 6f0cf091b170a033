import pytest

from oppy.bench.device import gpus, peak_flops
from oppy.bench.timing import machine


@pytest.mark.parametrize(("name", "model", "fp32", "fp16"), [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 67e12, 989.5e12),
    ("NVIDIA H100 PCIe", "H100 PCIe", 51e12, 756.5e12),
    ("NVIDIA H100 NVL", "H100 NVL", 60e12, 835.5e12),
    ("NVIDIA H200", "H200 SXM", 67e12, 989.5e12),
    ("NVIDIA H200 NVL", "H200 NVL", 60e12, 835.5e12),
])
def test_known_gpus_get_their_datasheet_dense_peaks(name, model, fp32, fp16):
    peaks = peak_flops(name)
    assert (peaks["device"], peaks["fp32"], peaks["fp16"]) == (model, fp32, fp16)
    assert peaks["fp32"] < peaks["tf32"] < peaks["fp16"]


@pytest.mark.parametrize("name", ["NVIDIA A100-SXM4-80GB", "NVIDIA GeForce RTX 4090", "", None])
def test_other_devices_have_no_roof(name):
    assert peak_flops(name) is None


def _fake_smi(folder, listing: str):
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '{listing}'\n")
    smi.chmod(0o755)


def test_gpus_come_from_nvidia_smi_with_their_driver(tmp_path, monkeypatch):
    _fake_smi(tmp_path, "NVIDIA H100 80GB HBM3, 580.159.04\\nNVIDIA H100 80GB HBM3, 580.159.04\\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpus() == [{"name": "NVIDIA H100 80GB HBM3", "driver": "580.159.04"}] * 2
    assert machine()["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"


def test_without_nvidia_smi_there_is_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpus() == []
    assert machine()["cores"] >= 1
