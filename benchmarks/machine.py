"""What a benchmark ran on, and the process memory figures it reports."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch


def describe() -> dict[str, Any]:
    """CPU, cores, memory, torch and its threads, load average, and the time of the run."""
    load1, load5, load15 = os.getloadavg()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "mem_total_gib": round(_meminfo("MemTotal") / 2**20, 1),
        "mem_available_gib": round(_meminfo("MemAvailable") / 2**20, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux: kilobytes in ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory now."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _meminfo(key: str) -> int:
    """A /proc/meminfo field in kB (0 where the file is absent)."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return 0
    for line in meminfo.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0
