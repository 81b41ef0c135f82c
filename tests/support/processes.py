"""The agent and the aggregator as separate processes, for tests that kill and restart them.

``KooperantProcess`` runs ``python -m kooperant ARGUMENTS`` (or another module, such as
``tests.support.ticking_agent``) and appends its output to a log file. It waits until the process
is ready, which means an HTTP URL responds or a line of its log matches a pattern. ``kill`` ends
it with SIGKILL and no clean-up, ``stop`` with SIGINT/SIGTERM and a clean shutdown. ``start``
after either runs the same command again, with the same log file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
_POLL_SECONDS = 0.1


class ProcessFailed(AssertionError):
    """A process ended or did not become ready; the message has the end of its log."""


class KooperantProcess:
    """One command line, started and ended on request; its output goes to ``log_file``.

    ``ready_url`` is polled until it responds with any HTTP status; otherwise ``ready_pattern``
    must match a log line written since the last start. With neither, the process counts as
    ready once it runs.
    """

    def __init__(
        self,
        name: str,
        arguments: Sequence[str],
        folder: Path,
        *,
        module: str = "kooperant",
        ready_url: str | None = None,
        ready_pattern: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        http_port: int | None = None,
    ) -> None:
        self.name = name
        self.http_port = http_port
        self.command = [sys.executable, "-m", module, *arguments]
        self.log_file = folder / f"{name}.log"
        self.ready_url = ready_url
        self.ready_pattern = re.compile(ready_pattern) if ready_pattern else None
        self.cwd = cwd or folder
        self.env = {
            **os.environ,
            "KOOPERANT_LANG": "en",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True) -> None:
        """Start the command; with ``wait``, return once it is ready or raise ``ProcessFailed``."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        with self.log_file.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- start {self.starts + 1}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
            )
        self.starts += 1
        if wait:
            self.wait_ready()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def wait_ready(self, max_seconds: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            if not self.running:
                raise ProcessFailed(self._failure("ended before it was ready"))
            if self._is_ready():
                return
            time.sleep(_POLL_SECONDS)
        raise ProcessFailed(self._failure(f"was not ready within {max_seconds:.0f} s"))

    def wait_for_log(self, pattern: str, max_seconds: float = READY_TIMEOUT_SECONDS) -> str:
        """Return the first log line since the last start that matches ``pattern``."""
        expression = re.compile(pattern)
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            for line in self.log_since_start().splitlines():
                if expression.search(line):
                    return line
            time.sleep(_POLL_SECONDS)
        raise ProcessFailed(self._failure(f"logged no line matching {pattern!r}"))

    def wait_done(self, max_seconds: float = READY_TIMEOUT_SECONDS) -> int:
        """Wait until a command that ends by itself (a migration, say) ends; return its status."""
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        try:
            return self.process.wait(max_seconds)
        except subprocess.TimeoutExpired:
            raise ProcessFailed(self._failure(f"did not end within {max_seconds:.0f} s")) from None

    def kill(self) -> None:
        """End the process with SIGKILL: no clean shutdown, no MQTT DISCONNECT."""
        self._signal_and_wait(signal.SIGKILL)

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """End the process with ``sig`` (SIGINT or SIGTERM) and return its exit status."""
        return self._signal_and_wait(sig)

    def log_text(self) -> str:
        return self.log_file.read_text("utf-8", errors="replace") if self.log_file.exists() else ""

    def log_since_start(self) -> str:
        with self.log_file.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", errors="replace")

    def _signal_and_wait(self, sig: signal.Signals) -> int:
        process = self.process
        if process is None:
            raise RuntimeError(f"{self.name} was never started")
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise ProcessFailed(
                self._failure(f"did not end within {STOP_TIMEOUT_SECONDS:.0f} s of {sig.name}")
            ) from None

    def _is_ready(self) -> bool:
        if self.ready_url is not None:
            try:
                httpx.get(self.ready_url, timeout=1.0)
            except httpx.HTTPError:
                return False
            return True
        if self.ready_pattern is not None:
            return self.ready_pattern.search(self.log_since_start()) is not None
        return True

    def _failure(self, what: str) -> str:
        status = self.process.poll() if self.process is not None else None
        tail = "\n".join(self.log_text().splitlines()[-40:])
        return f"{self.name} (exit status {status}) {what}; end of {self.log_file}:\n{tail}"


def server_process(
    folder: Path,
    *,
    name: str = "server",
    database: str,
    broker_url: str,
    http_port: int,
    cluster: str | None = None,
    extra: Sequence[str] = (),
) -> KooperantProcess:
    """``kooperant server run`` with an external broker; ready once ``/healthz`` responds."""
    arguments = [
        "server",
        "run",
        "--database",
        database,
        "--broker",
        broker_url,
        "--port",
        str(http_port),
    ]
    if cluster is not None:
        arguments += ["--cluster", cluster]
    return KooperantProcess(
        name,
        [*arguments, *extra],
        folder,
        ready_url=f"http://127.0.0.1:{http_port}/healthz",
        http_port=http_port,
    )


def ingest_process(
    folder: Path,
    *,
    name: str,
    database: str,
    broker_url: str,
    cluster: str | None = None,
    extra: Sequence[str] = (),
    ready_pattern: str = r"(?i)subscribed",
) -> KooperantProcess:
    """``kooperant server ingest`` (no HTTP); ready once its log matches ``ready_pattern``."""
    arguments = ["server", "ingest", "--database", database, "--broker", broker_url]
    if cluster is not None:
        arguments += ["--cluster", cluster]
    return KooperantProcess(
        name,
        [*arguments, *extra],
        folder,
        ready_pattern=ready_pattern,
    )


def agent_process(
    folder: Path,
    config: Path,
    *,
    name: str = "agent",
    module: str = "kooperant",
    ready_pattern: str | None = r"Connected to MQTT broker|Agent \S+ publishes",
    verbose: bool = False,
) -> KooperantProcess:
    """``kooperant agent run --config CONFIG``, run by ``module``; ``verbose`` logs DEBUG too."""
    return KooperantProcess(
        name,
        [*(["--verbose"] if verbose else []), "agent", "run", "--config", str(config)],
        folder,
        module=module,
        ready_pattern=ready_pattern,
        cwd=config.parent,
    )
