"""A Mosquitto process of the test's own, on free loopback ports.

Tests that stop or kill the broker, change its configuration (TLS, passwords, ACL), or subscribe
to ``#`` and must see no other test's retained messages use this instead of the machine's
Mosquitto on port 1883. The broker can be started again on the same ports after ``stop`` or
``kill``; with ``persistence=True`` it keeps its sessions and retained messages in its folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kooperant.net import free_tcp_port

START_TIMEOUT_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a TLS listener, and whether clients must present a certificate."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = False


class OwnMosquitto:
    """A Mosquitto process listening on ``127.0.0.1:port`` (and ``tls_port`` with ``tls``).

    ``start`` waits until every listener accepts connections. A ``password_file`` turns off
    anonymous access. ``extra_config`` is appended to the generated ``mosquitto.conf`` as is.
    With ``persistence=True`` the broker writes ``mosquitto.db`` in ``folder`` after every change
    (``autosave_on_changes``), so even ``kill`` loses at most the change in flight.
    """

    def __init__(
        self,
        folder: Path,
        *,
        extra_config: str = "",
        persistence: bool = False,
        tls: TlsFiles | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
    ) -> None:
        if shutil.which("mosquitto") is None:
            raise FileNotFoundError("the mosquitto program is not installed")
        self.folder = folder
        self.port = free_tcp_port()
        self.tls_port = free_tcp_port() if tls is not None else None
        self.config = folder / "mosquitto.conf"
        self.log_file = folder / "mosquitto.log"
        self.config.write_text(
            _config_text(
                self.port,
                self.tls_port,
                folder=folder,
                persistence=persistence,
                tls=tls,
                password_file=password_file,
                acl_file=acl_file,
                extra_config=extra_config,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        if self.tls_port is None:
            raise ValueError("this broker was made without a TLS listener (pass tls=TlsFiles(...))")
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        """Start the broker and wait until all its listeners accept connections."""
        if self.process is not None:
            raise RuntimeError(f"mosquitto on port {self.port} is already running")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        ports = [self.port] if self.tls_port is None else [self.port, self.tls_port]
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for port in ports:
            self._wait_until_listening(port, deadline)

    def stop(self) -> None:
        """Stop the broker with SIGTERM, so it saves persistence and closes connections."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the broker with SIGKILL: clients see the connection drop without a DISCONNECT."""
        self._end(signal.SIGKILL)

    def log_text(self) -> str:
        """Return what the broker wrote to its log so far, for failure messages."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_until_listening(self, port: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(
                    f"mosquitto exited with status {code} before listening on port {port}; "
                    f"its log:\n{self.log_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(
            f"mosquitto did not listen on port {port} within {START_TIMEOUT_SECONDS} s; "
            f"its log:\n{self.log_text()}"
        )

    def _end(self, stop_signal: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, stop_signal)
        self.process.wait(STOP_TIMEOUT_SECONDS)
        self.process = None


@contextmanager
def running(broker: OwnMosquitto) -> Iterator[OwnMosquitto]:
    """Start ``broker`` and stop it on exit, also when the test fails."""
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _config_text(
    port: int,
    tls_port: int | None,
    *,
    folder: Path,
    persistence: bool,
    tls: TlsFiles | None,
    password_file: Path | None,
    acl_file: Path | None,
    extra_config: str,
) -> str:
    # Mosquitto started as root switches to the user "mosquitto", which may not read the test's
    # files. The "user" option keeps the current user, and is ignored when not started as root.
    lines = [
        f"user {pwd.getpwuid(os.getuid()).pw_name}",
        "per_listener_settings false",
        f"allow_anonymous {'false' if password_file is not None else 'true'}",
        f"listener {port} 127.0.0.1",
    ]
    if tls is not None:
        lines += [
            f"listener {tls_port} 127.0.0.1",
            f"cafile {tls.ca_file}",
            f"certfile {tls.cert_file}",
            f"keyfile {tls.key_file}",
            f"require_certificate {'true' if tls.require_certificate else 'false'}",
        ]
    if password_file is not None:
        lines.append(f"password_file {password_file}")
    if acl_file is not None:
        lines.append(f"acl_file {acl_file}")
    if persistence:
        lines += [
            "persistence true",
            f"persistence_location {folder}/",
            "autosave_on_changes true",
            "autosave_interval 1",
        ]
    return "\n".join(lines) + "\n" + extra_config + ("\n" if extra_config else "")
