"""The device a benchmark ran on, and its peak FLOP/s where we know it: the roof that tiles/s is put beside.

GPU name and driver come from nvidia-smi; peaks are the vendor datasheets' dense figures.
"""

from __future__ import annotations

import re
import shutil
import subprocess

# Peak dense FLOP/s, per NVIDIA's datasheets ("NVIDIA H100 Tensor Core GPU" datasheet, and "NVIDIA H200 Tensor
# Core GPU" datasheet): FP32 is the CUDA-core figure; TF32 and FP16 are the Tensor Core figures, which the
# datasheets give "with sparsity" (x2), halved here to dense. H100 SXM and H200 SXM: FP32 67 TFLOPS, TF32 989*,
# FP16 1,979*; H100 PCIe: 51, 756*, 1,513*; H100 NVL and H200 NVL: 60, 835*, 1,671*.
# Matched against nvidia-smi's name in this order (an H100 SXM reports itself as "NVIDIA H100 80GB HBM3").
PEAKS = [
    (r"H200 NVL", "H200 NVL", {"fp32": 60e12, "tf32": 417.5e12, "fp16": 835.5e12}),
    (r"H200", "H200 SXM", {"fp32": 67e12, "tf32": 494.5e12, "fp16": 989.5e12}),
    (r"H100 NVL", "H100 NVL", {"fp32": 60e12, "tf32": 417.5e12, "fp16": 835.5e12}),
    (r"H100 PCIe", "H100 PCIe", {"fp32": 51e12, "tf32": 378e12, "fp16": 756.5e12}),
    (r"H100", "H100 SXM", {"fp32": 67e12, "tf32": 494.5e12, "fp16": 989.5e12}),
]


def gpus() -> list[dict[str, str]]:
    """Name and driver version of every NVIDIA GPU nvidia-smi lists; empty without nvidia-smi or a GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.rsplit(",", 1) for line in listing.splitlines() if "," in line]
    return [{"name": name.strip(), "driver": driver.strip()} for name, driver in rows]


def peak_flops(gpu_name: str | None) -> dict | None:
    """{"device": datasheet model, "fp32", "tf32", "fp16": FLOP/s} for a GPU we have figures for, else None."""
    for pattern, model, peaks in PEAKS:
        if gpu_name and re.search(pattern, gpu_name):
            return {"device": model, **peaks}
    return None
