"""A Mosquitto process of the test's own, on a free loopback port.

Tests that stop the broker, or that subscribe to ``#`` and must see no other test's retained
messages, use this instead of the machine's Mosquitto on port 1883.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from kooperant.net import free_tcp_port

START_TIMEOUT_SECONDS = 5.0


class OwnMosquitto:
    """A Mosquitto process listening on ``127.0.0.1:port``; ``start`` waits until it accepts."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("mosquitto") is None:
            raise FileNotFoundError("the mosquitto program is not installed")
        self.port = free_tcp_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on port {self.port} within 5 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)
            self.process = None
