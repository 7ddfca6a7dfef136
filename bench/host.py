"""One line naming the machine a bench ran on: speed figures depend on the CPU (its int8 instructions above all)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """CPU count and model (with its family/model numbers, which tell CPU generations apart when the model name
    does not), int8 dot-product support, load average and GPUs."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or "?"
    if "cpu family" in fields:
        model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    flags = fields.get("flags", "").split()
    int8 = [flag for flag in ("avx512_vnni", "avx_vnni", "amx_int8") if flag in flags] or ["no VNNI"]
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    gpu = os.popen("nvidia-smi -L 2>/dev/null").read().strip() or "none"
    return f"host: {os.cpu_count()} CPUs, {model}, {', '.join(int8)}; load {load}; GPU: {gpu}"


if __name__ == "__main__":
    print(describe())
