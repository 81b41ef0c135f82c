"""Running the benchmark scripts in their smoke tests: each at a tiny size, in a child process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None, reason="the mosquitto program is not installed"
)
"""Skip marker for a script that starts a Mosquitto broker of its own."""


def run_bench_script(
    script: Path, *arguments: str, timeout: float = 170
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with this interpreter from the repository root and capture its output.

    The exit status is not checked, so a test can assert both the figures of a good run and
    the message of a rejected option. ``timeout`` is in seconds.
    """
    return subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
