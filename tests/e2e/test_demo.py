"""``kooperant demo`` as a user runs it: a separate process, observed through its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

READY_WITHIN_SECONDS = 15.0


def start_demo(port: int, log: Path, *extra: str, language: str = "en") -> subprocess.Popen[str]:
    # Output goes to a file, not a pipe: an unread pipe fills up and blocks the demo.
    environment = {**os.environ, "KOOPERANT_LANG": language}
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "kooperant", "demo", "--port", str(port), *extra],
            stdout=output,
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


def finish(process: subprocess.Popen[str], log: Path, timeout: float) -> tuple[int, str]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        output = log.read_text()
        raise AssertionError(f"demo did not stop within {timeout} s; output:\n{output}") from None
    return process.returncode, log.read_text()


def test_demo_serves_machines_then_stops_after_duration(free_port: int, tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    process = start_demo(free_port, log, "--duration", "25")

    machines = wait_for_machines(free_port, process)
    returncode, output = finish(process, log, timeout=40)

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


def test_demo_stops_cleanly_on_ctrl_c(free_port: int, tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    process = start_demo(free_port, log)
    machines = wait_for_machines(free_port, process)

    process.send_signal(signal.SIGINT)
    returncode, output = finish(process, log, timeout=20)

    assert len(machines) >= 3, output
    assert returncode == 0, output
    assert "Traceback" not in output


def test_demo_rejects_zero_duration(free_port: int, tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    process = start_demo(free_port, log, "--duration", "0")

    returncode, output = finish(process, log, timeout=20)

    assert returncode == 2
    assert "Invalid --duration 0" in output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5"])
def test_demo_rejects_non_finite_duration(free_port: int, tmp_path: Path, value: str) -> None:
    log = tmp_path / "demo.log"
    process = start_demo(free_port, log, f"--duration={value}")

    returncode, output = finish(process, log, timeout=20)

    assert returncode == 2, output
    assert f"Invalid --duration {value}" in output
    assert "kooperant demo is running" not in output


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "The HTTP server cannot listen on 127.0.0.1:{port}: port in use"),
        ("pl", "Serwer HTTP nie może nasłuchiwać na 127.0.0.1:{port}: port jest zajęty"),
    ],
)
def test_demo_port_in_use_exits_2(tmp_path: Path, language: str, expected: str) -> None:
    log = tmp_path / "demo.log"
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]

        process = start_demo(port, log, "--duration", "20", language=language)
        returncode, output = finish(process, log, timeout=20)

    assert returncode == 2, output
    assert expected.format(port=port) in output
    assert "--port" in output
    assert "Traceback" not in output
    assert "Embedded MQTT broker listening" not in output
