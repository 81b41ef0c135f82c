"""Tests of the progress of ``kooperant agent browse`` on a server with many machines.

The server is an in-process asyncua server built from the DI and Machinery NodeSet2 files. It
takes about 20 s to build, so one server serves the whole module from its own thread and event
loop. The command runs in a child process: under a pseudo-terminal (pexpect) for the progress
line, and with its stderr piped for the case without a terminal.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pexpect
import pytest
from asyncua import ua
from asyncua.ua.object_ids import ObjectIds

from adapters.opcua.browse import BrowseProgress, browse_server
from tests.conftest import SHARED_DATA
from tests.support.machinery_server import MachineryTestServer, MachineSpec, machinery_server

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.nodesets]

REPO_ROOT = Path(__file__).resolve().parents[2]
MACHINE_COUNT = 120
# Each machine has CurrentState, its Id and its Number.
VALUES_PER_MACHINE = 3
MAX_NODES_PER_READ = 50
COMMAND = "from kooperant.cli import main; main()"
PROGRESS_TEXTS = {
    "en": ("Connecting to ", "Finding machines, found so far: ", "Reading machine states: "),
    "pl": ("Łączenie z ", "Wyszukiwanie maszyn, dotąd znaleziono: ", "Odczyt stanów maszyn: "),
}


@asynccontextmanager
async def large_server(nodesets_dir: Path) -> AsyncIterator[MachineryTestServer]:
    """Run a Machinery server with ``MACHINE_COUNT`` machines and a small ``MaxNodesPerRead``."""
    machines = [
        MachineSpec(f"Machine-{number:04d}", "Hermle", "C 42 U", f"H-{number}")
        for number in range(MACHINE_COUNT)
    ]
    async with machinery_server(nodesets_dir, machines) as server:
        limit = server.server.get_node(
            ua.NodeId(ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
        )
        await limit.write_value(ua.Variant(MAX_NODES_PER_READ, ua.VariantType.UInt32))
        yield server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """Serve ``large_server`` from a thread of its own for the module; yield its endpoint."""
    nodesets = nodesets_folder()
    ready = threading.Event()
    stop = threading.Event()
    endpoints: list[str] = []
    failures: list[BaseException] = []

    async def serve() -> None:
        async with large_server(nodesets) as server:
            endpoints.append(server.endpoint)
            ready.set()
            await asyncio.to_thread(stop.wait)

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:
            failures.append(error)
            ready.set()

    thread = threading.Thread(target=run, name="large OPC UA server", daemon=True)
    thread.start()
    ready.wait(timeout=300)
    if failures:
        raise failures[0]
    assert endpoints, "the server did not start within 300 s"
    yield endpoints[0]
    stop.set()
    thread.join(timeout=30)


def nodesets_folder() -> Path:
    """The NodeSet2 folder as the ``nodesets_dir`` fixture finds it, or a skip."""
    configured = os.environ.get("KOOPERANT_NODESETS_DIR")
    folder = Path(configured) if configured else SHARED_DATA / "opcua-nodesets" / "current"
    if not folder.is_dir():
        pytest.skip(f"OPC UA nodesets not found at {folder}; set KOOPERANT_NODESETS_DIR")
    return folder


def command_environment(language: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "KOOPERANT_LANG": language,
        "TERM": "xterm-256color",
    }


def browse_in_terminal(endpoint: str, *arguments: str, language: str) -> tuple[int, str]:
    """Run the command under a pseudo-terminal; return its exit status and everything it wrote."""
    child = pexpect.spawn(
        sys.executable,
        ["-c", COMMAND, "agent", "browse", endpoint, *arguments],
        cwd=REPO_ROOT,
        env=command_environment(language),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=120,
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus or 0, child.before or ""


def browse_piped(endpoint: str, language: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", COMMAND, "agent", "browse", endpoint],
        cwd=REPO_ROOT,
        env=command_environment(language),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_browse_server_reports_increasing_counts(endpoint: str) -> None:
    reports: list[BrowseProgress] = []
    result = await browse_server(endpoint, 10.0, progress=reports.append)

    assert len(result.machines) == MACHINE_COUNT
    found = [report.machines_found for report in reports if report.values_total is None]
    assert found == list(range(1, MACHINE_COUNT + 1))
    reads = [report for report in reports if report.values_total is not None]
    total = MACHINE_COUNT * VALUES_PER_MACHINE
    assert [report.values_read for report in reads] == [
        *range(MAX_NODES_PER_READ, total, MAX_NODES_PER_READ),
        total,
    ]
    assert {report.values_total for report in reads} == {total}
    assert {report.machines_found for report in reads} == {MACHINE_COUNT}
    assert reports.index(reads[0]) == len(found)


async def test_browse_server_without_callback_unchanged(endpoint: str) -> None:
    with_progress = await browse_server(endpoint, 10.0, progress=lambda _: None)
    without = await browse_server(endpoint, 10.0)

    assert without == with_progress


@pytest.mark.parametrize("language", ["en", "pl"])
def test_browse_terminal_shows_progress(endpoint: str, language: str) -> None:
    status, output = browse_in_terminal(endpoint, language=language)

    assert status == 0, output
    connecting, finding, reading = PROGRESS_TEXTS[language]
    assert f"{connecting}{endpoint}" in output
    # Finding 120 machines takes longer than the 0.1 s between two redraws.
    assert finding in output
    total = MACHINE_COUNT * VALUES_PER_MACHINE
    # The last state is drawn once more when the display stops, before the line is removed.
    assert f"{reading}{total} " in output
    assert "• Machine-0119" in output


@pytest.mark.parametrize("language", ["en", "pl"])
def test_browse_piped_prints_no_progress(endpoint: str, language: str) -> None:
    result = browse_piped(endpoint, language)

    assert result.returncode == 0, result.stderr
    for text in PROGRESS_TEXTS[language]:
        assert text not in result.stderr
        assert text not in result.stdout
    assert "\x1b[" not in result.stderr


def test_browse_json_in_terminal_prints_no_progress(endpoint: str) -> None:
    status, output = browse_in_terminal(endpoint, "--json", language="en")

    assert status == 0, output
    for text in PROGRESS_TEXTS["en"]:
        assert text not in output
    assert output.lstrip().startswith("{")
