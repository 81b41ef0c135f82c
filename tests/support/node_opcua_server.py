"""A node-opcua Machinery server in a child process: a second OPC UA stack next to asyncua.

``node_opcua_server`` runs ``tests/support/node_opcua/server.js`` with Node.js, waits for the
``ready`` line on its stdout and yields a ``NodeOpcuaServer``. State changes and certificate
reloads are sent as command lines on the child's stdin, and each is acknowledged on its stdout. The
modules come from ``npm ci --prefix tests/support/node_opcua``, which ``scripts/test`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from kooperant.net import free_tcp_port
from tests.support.machinery_server import DEFAULT_MACHINES, STATE_OBJECT_IDS, MachineSpec

_LOGGER = logging.getLogger(__name__)

SERVER_DIR = Path(__file__).resolve().parent / "node_opcua"
SERVER_SCRIPT = SERVER_DIR / "server.js"
# npm writes this copy of the lock file into node_modules on every install.
INSTALLED_LOCK = SERVER_DIR / "node_modules" / ".package-lock.json"
INSTALL_HINT = f"run: npm ci --prefix {SERVER_DIR} --no-audit --no-fund"

STOP_TIMEOUT_SECONDS = 5.0
STDERR_LINES_KEPT = 20


class NodeOpcuaServerError(RuntimeError):
    """Raised when the node-opcua server fails to start or rejects a command."""


def unavailable_reason() -> str | None:
    """Return why the node-opcua server cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "Node.js (node) is not on PATH"
    if not INSTALLED_LOCK.is_file():
        return f"node-opcua is not installed in {SERVER_DIR / 'node_modules'}; {INSTALL_HINT}"
    if INSTALLED_LOCK.stat().st_mtime < (SERVER_DIR / "package-lock.json").stat().st_mtime:
        return f"node_modules in {SERVER_DIR} is older than package-lock.json; {INSTALL_HINT}"
    return None


class NodeOpcuaServer:
    """A running node-opcua server: its endpoint, its start time and a way to change states."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        endpoint: str,
        startup_seconds: float,
        pki_dir: Path,
    ) -> None:
        self.endpoint = endpoint
        # The server's PKI folder: own/, trusted/certs/ and rejected/ of node-opcua.
        self.pki_dir = pki_dir
        # Seconds from starting the process to its ready line.
        self.startup_seconds = startup_seconds
        self._process = process
        self._lock = asyncio.Lock()

    async def set_state(self, machine: str, state: str, timeout_seconds: float = 5.0) -> None:
        """Set the MachineryItemState of ``machine`` and wait for the server's acknowledgement."""
        if state not in STATE_OBJECT_IDS:
            raise ValueError(
                f"invalid state {state!r}; expected one of {', '.join(STATE_OBJECT_IDS)}"
            )
        await self._command(f"set {machine} {state}", timeout_seconds)

    async def reload_certificates(self, timeout_seconds: float = 5.0) -> None:
        """Make the server re-read its trusted and rejected certificates from ``pki_dir``."""
        await self._command("reload-certificates", timeout_seconds)

    async def _command(self, command: str, timeout_seconds: float) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None

        async with self._lock:
            self._process.stdin.write(f"{command}\n".encode())
            await self._process.stdin.drain()
            line = await asyncio.wait_for(self._process.stdout.readline(), timeout_seconds)

        reply = line.decode().strip()
        if reply != f"ok {command}":
            raise NodeOpcuaServerError(f"node-opcua server rejected {command}: {reply!r}")


@asynccontextmanager
async def node_opcua_server(
    machines: Sequence[MachineSpec] = DEFAULT_MACHINES,
    *,
    port: int | None = None,
    start_timeout_seconds: float = 30.0,
    max_nodes_per_read: int = 0,
    max_monitored_items_per_call: int = 0,
    max_monitored_items_per_subscription: int = 0,
    secure: bool = False,
) -> AsyncIterator[NodeOpcuaServer]:
    """Run the node-opcua Machinery server on 127.0.0.1 and yield it. ``port=None`` picks one.

    ``max_nodes_per_read`` and ``max_monitored_items_per_call`` set the server's OperationLimits,
    which node-opcua enforces; 0 means no limit. Beyond ``max_monitored_items_per_subscription``
    items, the server rejects each further item of a subscription; 0 keeps node-opcua's default.
    ``secure`` passes ``--secure``: only signed or encrypted endpoints, and client certificates
    must be in the server's ``trusted/certs`` (see server.js).
    """
    reason = unavailable_reason()
    if reason is not None:
        raise NodeOpcuaServerError(reason)

    with tempfile.TemporaryDirectory(prefix="kooperant-node-opcua-pki-") as pki_dir:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            "node",
            str(SERVER_SCRIPT),
            "--port",
            str(port if port is not None else free_tcp_port()),
            "--pki",
            pki_dir,
            "--machines",
            json.dumps([_machine_json(spec) for spec in machines]),
            "--max-nodes-per-read",
            str(max_nodes_per_read),
            "--max-monitored-items-per-call",
            str(max_monitored_items_per_call),
            "--max-monitored-items-per-subscription",
            str(max_monitored_items_per_subscription),
            *(["--secure"] if secure else []),
            cwd=SERVER_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stderr_tail: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        stderr_task = asyncio.create_task(_collect_stderr(process, stderr_tail))
        try:
            endpoint = await _wait_until_ready(process, stderr_tail, start_timeout_seconds)
            server = NodeOpcuaServer(process, endpoint, time.monotonic() - started, Path(pki_dir))
            _LOGGER.info(
                "node-opcua server ready at %s in %.2f s", endpoint, server.startup_seconds
            )
            yield server
        finally:
            await _stop(process)
            await stderr_task


def _machine_json(spec: MachineSpec) -> dict[str, str]:
    return {
        "browseName": spec.browse_name,
        "manufacturer": spec.manufacturer,
        "model": spec.model,
        "serialNumber": spec.serial_number,
        "state": spec.state,
    }


async def _collect_stderr(process: asyncio.subprocess.Process, tail: deque[str]) -> None:
    # Reading stderr continuously keeps the pipe from filling up with node-opcua's warnings.
    assert process.stderr is not None
    async for line in process.stderr:
        tail.append(line.decode(errors="replace").rstrip())


async def _wait_until_ready(
    process: asyncio.subprocess.Process, stderr_tail: deque[str], timeout_seconds: float
) -> str:
    """Read stdout until the ready line and return the endpoint URL it names."""
    assert process.stdout is not None
    try:
        async with asyncio.timeout(timeout_seconds):
            async for raw in process.stdout:
                line = raw.decode().strip()
                if line.startswith("ready "):
                    return line.removeprefix("ready ")
            await process.wait()
    except TimeoutError:
        problem = f"did not print its ready line within {timeout_seconds} s"
    else:
        problem = f"exited with code {process.returncode} before it was ready"

    # Give the stderr reader a moment to take in the error the process printed before it ended.
    await asyncio.sleep(0.1)
    output = "\n".join(stderr_tail) or "(no output on stderr)"
    raise NodeOpcuaServerError(f"node-opcua server {SERVER_SCRIPT} {problem}:\n{output}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Close stdin, which makes the server shut down, and kill it if it does not exit in time."""
    if process.returncode is None and process.stdin is not None:
        process.stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await process.stdin.wait_closed()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        _LOGGER.warning(
            "node-opcua server did not stop within %s s of closing stdin; killing it",
            STOP_TIMEOUT_SECONDS,
        )
        process.kill()
        await process.wait()
