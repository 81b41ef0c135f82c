"""Facts about the machine that the benchmark scripts print before their figures."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """Return the CPU model name from ``/proc/cpuinfo``, else ``platform.processor()``."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown model"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return "unknown model"
