"""``kooperant demo`` as a user runs it: a separate process, observed through its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

READY_WITHIN_SECONDS = 15.0


def start_demo(port: int, *extra: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "KOOPERANT_LANG": "en"}
    return subprocess.Popen(
        [sys.executable, "-m", "kooperant", "demo", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )


def fetch_machines(port: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/resources?kind=machine"
    with urllib.request.urlopen(url, timeout=2) as response:
        items: list[dict[str, Any]] = json.load(response)["items"]
    return items


def wait_for_machines(port: int, process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """Poll the API until three machines have free hours; return them, or [] after the limit."""
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline and process.poll() is None:
        try:
            items = fetch_machines(port)
        except OSError:
            items = []
        if len([item for item in items if (item["free_hours"] or 0) > 0]) >= 3:
            return items
        time.sleep(0.5)
    return items


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"demo did not stop within {timeout} s; output:\n{output}") from None
    return process.returncode, output


def test_demo_serves_machines_then_stops_after_duration(free_port: int) -> None:
    process = start_demo(free_port, "--duration", "25")

    machines = wait_for_machines(free_port, process)
    returncode, output = finish(process, timeout=40)

    assert len(machines) >= 3, output
    assert all(item["free_hours"] > 0 for item in machines), machines
    assert {"cnc-5ax-01", "laser-02", "press-03"} <= {item["resource"] for item in machines}
    assert all(item["free_intervals"] for item in machines)
    assert all(
        item["state"] in {"NotAvailable", "OutOfService", "NotExecuting", "Executing"}
        for item in machines
    ), machines
    assert returncode == 0, output
    assert "Demo stopped." in output


def test_demo_stops_cleanly_on_ctrl_c(free_port: int) -> None:
    process = start_demo(free_port)
    machines = wait_for_machines(free_port, process)

    process.send_signal(signal.SIGINT)
    returncode, output = finish(process, timeout=20)

    assert len(machines) >= 3, output
    assert returncode == 0, output
    assert "Traceback" not in output


def test_demo_rejects_zero_duration(free_port: int) -> None:
    process = start_demo(free_port, "--duration", "0")

    returncode, output = finish(process, timeout=20)

    assert returncode == 2
    assert "Invalid --duration 0" in output
