"""Tests of ``kooperant agent browse`` against in-process OPC UA servers.

The command runs ``asyncio.run`` itself, so the async tests invoke it in a worker thread while the
server keeps serving in the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Server
from typer.testing import CliRunner

from adapters.opcua import OpcUaSettings
from adapters.opcua.browse import (
    BrowsedMachine,
    BrowseResult,
    browse_server,
    suggested_resources,
)
from adapters.opcua.machinery import MACHINERY_URI, CompanionModel
from agent.browse_cli import config_snippet
from agent.cli import app
from kooperant.demo.machine_park import PARK_MACHINES, MachinePark
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState, check_identifier
from tests.support.machinery_server import DEFAULT_MACHINES, machinery_server
from tests.support.secure_server import ServerSecurity, secure_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STATES = {"NotAvailable", "OutOfService", "NotExecuting", "Executing"}


class Output:
    """Exit status, stdout and stderr of one ``kooperant agent browse`` run."""

    def __init__(self, exit_code: int, stdout: str, stderr: str, exception: object) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.exception = exception


def invoke(*arguments: str, language: str = "en") -> Output:
    result = CliRunner().invoke(app, ["browse", *arguments], env={"KOOPERANT_LANG": language})
    return Output(result.exit_code, result.stdout, result.stderr, result.exception)


async def invoke_in_thread(*arguments: str, language: str = "en") -> Output:
    return await asyncio.to_thread(invoke, *arguments, language=language)


def snippet_settings(snippet: str) -> tuple[dict[str, Any], OpcUaSettings]:
    """Load the printed entry as YAML and validate its settings as the agent config does."""
    entry = dict(yaml.safe_load(snippet)["adapters"][0])
    header = {"type": entry.pop("type"), "name": entry.pop("name")}
    return header, OpcUaSettings.model_validate(entry)


def snippet_from_text(stdout: str, heading: str) -> str:
    return stdout.split(f"{heading}\n", 1)[1]


@asynccontextmanager
async def plain_server(*namespaces: str, anonymous: bool = True) -> AsyncIterator[str]:
    """Run an asyncua server with only the given namespaces added; yield its endpoint."""
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    if not anonymous:
        server.set_security_IDs(["Username"])
    for uri in namespaces:
        await server.register_namespace(uri)
    async with server:
        yield endpoint


@contextmanager
def silent_listener() -> Iterator[str]:
    """Listen on a socket that completes the TCP handshake but never sends; yield the endpoint."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield f"opc.tcp://127.0.0.1:{listener.getsockname()[1]}"


def machine(browse_name: str) -> BrowsedMachine:
    return BrowsedMachine(
        browse_name, browse_name, {}, CompanionModel.MACHINERY, (), MachineState.UNKNOWN
    )


async def test_browse_lists_demo_park_machines() -> None:
    async with MachinePark(port=0) as park:
        output = await invoke_in_thread(park.endpoint)

    assert output.exit_code == 0, output.stderr
    assert f"Server {park.endpoint}: 3 machines\n" in output.stdout
    assert "\nOPC 40001 Machinery, Machines folder: 3 machines\n" in output.stdout
    for simulated in PARK_MACHINES:
        assert f"• {simulated.browse_name}\n" in output.stdout
        assert f"serial number: {simulated.serial_number}" in output.stdout
    assert output.stdout.count("→ kooperant state: ") == 3


async def test_browse_lists_demo_park_in_polish() -> None:
    async with MachinePark(port=0) as park:
        output = await invoke_in_thread(park.endpoint, language="pl")

    assert output.exit_code == 0, output.stderr
    assert f"Serwer {park.endpoint}: 3 maszyny\n" in output.stdout
    assert "\nOPC 40001 Machinery, folder Machines: 3 maszyny\n" in output.stdout
    assert "producent: DMG MORI, model: DMU 50" in output.stdout
    assert "Wpis do konfiguracji agenta (YAML):" in output.stdout


async def test_browse_json_describes_demo_park() -> None:
    async with MachinePark(port=0) as park:
        output = await invoke_in_thread(park.endpoint, "--json")

    assert output.exit_code == 0, output.stderr
    document = json.loads(output.stdout)
    machines = document["machines"]
    assert document["url"] == park.endpoint
    assert [item["browse_name"] for item in machines] == park.machines
    assert [item["resource"] for item in machines] == ["cnc-5ax-01", "laser-02", "press-03"]
    for item in machines:
        variables = {variable["role"]: variable for variable in item["variables"]}
        assert item["model"] == "machinery"
        assert item["state"] in STATES
        assert variables["item_state"]["value"] == item["state"]
        assert variables["item_state"]["node_id"].endswith(".MachineryItemState.CurrentState")
        assert set(variables) == {"item_state", "item_state.id", "item_state.number"}
    assert machines[1]["identification"] == {
        "Manufacturer": "Trumpf",
        "Model": "TruLaser 3030",
        "SerialNumber": "TL3030-A17-118",
    }


async def test_browse_reports_changed_state() -> None:
    async with MachinePark(port=0) as park:
        await park.set_state("LASER-02", MachineState.OUT_OF_SERVICE)
        result = await browse_server(park.endpoint, 5.0)

    laser = result.machines[1]
    assert laser.current_state is not None
    assert laser.current_state.value == "OutOfService"
    assert laser.state is MachineState.OUT_OF_SERVICE


async def test_browse_snippet_from_text_validates() -> None:
    async with MachinePark(port=0) as park:
        output = await invoke_in_thread(park.endpoint, "--timeout", "12.5")

    snippet = snippet_from_text(output.stdout, "Entry for the agent config (YAML):")
    header, settings = snippet_settings(snippet)
    assert header["type"] == "opcua"
    assert check_identifier(header["name"], "adapter") == "opcua-127.0.0.1"
    assert settings.url == park.endpoint
    assert settings.timeout_seconds == 12.5
    assert settings.machines == {
        "CNC-5AX-01": "cnc-5ax-01",
        "LASER-02": "laser-02",
        "PRESS-03": "press-03",
    }


async def test_browse_shows_nodeset_identification(nodesets_dir: Path) -> None:
    async with machinery_server(nodesets_dir) as server:
        english = await invoke_in_thread(server.endpoint)
        polish = await invoke_in_thread(server.endpoint, language="pl")

    assert english.exit_code == 0, english.stderr
    for spec in DEFAULT_MACHINES:
        assert f"• {spec.browse_name}\n" in english.stdout
        expected = f"manufacturer: {spec.manufacturer}, model: {spec.model}, serial number: "
        assert expected + spec.serial_number in english.stdout
        assert f"producent: {spec.manufacturer}" in polish.stdout
        assert f"numer seryjny: {spec.serial_number}" in polish.stdout
    assert "  item_state: Executing (node " in english.stdout
    assert "  → kooperant state: Executing\n" in english.stdout
    assert "Serwer" in polish.stdout


async def test_browse_nodeset_snippet_validates(nodesets_dir: Path) -> None:
    async with machinery_server(nodesets_dir) as server:
        output = await invoke_in_thread(server.endpoint, "--json")

    document = json.loads(output.stdout)
    _, settings = snippet_settings(document["config"])
    assert '"Lathe B2": lathe-b2' in document["config"]
    assert settings.url == server.endpoint
    assert settings.machines == {"Mill-A1": "mill-a1", "Lathe B2": "lathe-b2"}
    assert settings.timeout_seconds == 5.0


def test_suggested_resources_unique_and_valid() -> None:
    machines = tuple(machine(name) for name in ("Lathe B2", "lathe-b2", "***", "LATHE B2"))

    resources = suggested_resources(machines)

    assert resources == {
        "Lathe B2": "lathe-b2",
        "lathe-b2": "lathe-b2-2",
        "***": "machine-3",
        "LATHE B2": "lathe-b2-3",
    }


def test_suggested_resources_long_collision() -> None:
    machines = (machine("A" * 70), machine("a" * 70))

    resources = suggested_resources(machines)

    assert resources["A" * 70] == "a" * 64
    assert resources["a" * 70] == "a" * 62 + "-2"
    assert check_identifier(resources["a" * 70], "resource") == resources["a" * 70]


def test_snippet_quotes_awkward_browse_names() -> None:
    names = ("Lathe B2", "12:30", "true", "#1", "a: b", "Frezarka Łódź", "***", "0x1F")
    result = BrowseResult("opc.tcp://[::1]:4840", tuple(machine(name) for name in names))

    snippet = config_snippet(result, 5.0)

    header, settings = snippet_settings(snippet)
    assert list(settings.machines) == list(names)
    assert settings.machines["***"] == "machine-7"
    assert settings.url == "opc.tcp://[::1]:4840"
    assert check_identifier(header["name"], "adapter") == "opcua---1"


def test_snippet_for_empty_folder_validates() -> None:
    snippet = config_snippet(BrowseResult("opc.tcp://10.0.0.5:4840", ()), 5.0)

    _, settings = snippet_settings(snippet)
    assert settings.machines == {}
    assert "timeout_seconds" not in snippet


ERROR_TEXTS = {
    "invalid_url": {
        "en": "Invalid URL {url}: give an OPC UA endpoint as opc.tcp://HOST:PORT",
        "pl": "Błędny adres {url}: podaj adres serwera OPC UA w postaci opc.tcp://HOST:PORT",
    },
    "unreachable": {
        "en": "Cannot connect to {url} (",
        "pl": "Nie można połączyć się z {url} (",
    },
    "timeout": {
        "en": "Server {url} did not respond within 0.5 s. Check that an OPC UA server listens "
        "at this address, or increase --timeout.",
        "pl": "Serwer {url} nie odpowiedział w ciągu 0.5 s. Sprawdź, czy pod tym adresem "
        "działa serwer OPC UA, albo zwiększ --timeout.",
    },
    "no_machinery": {
        "en": "Server {url} has no OPC 40001 Machinery namespace and no machine of the "
        "MachineTool, PackML or EUROMAP 83 models, so the opcua adapter finds no machines by "
        "itself. Load the Machinery model on the server or name the state variables under nodes "
        "in the adapter settings (docs/adapters.md).",
        "pl": "Serwer {url} nie ma przestrzeni nazw OPC 40001 Machinery ani maszyn modeli "
        "MachineTool, PackML czy EUROMAP 83, więc adapter opcua sam ich nie znajdzie. Załaduj "
        "model Machinery na serwerze albo wskaż zmienne stanu w kluczu nodes ustawień adaptera "
        "(docs/adapters.md).",
    },
    "no_machines_folder": {
        "en": "Server {url} has the Machinery namespace but no Machines folder. Place the "
        "machines in the Machines folder of OPC 40001 on the server.",
        "pl": "Serwer {url} ma przestrzeń nazw Machinery, ale nie ma folderu Machines.",
    },
    "rejected": {
        "en": "Server {url} rejected the anonymous connection without security "
        "(The user identity token is valid but the server has rejected it.",
        "pl": "Serwer {url} odrzucił anonimowe połączenie bez zabezpieczeń "
        "(The user identity token is valid but the server has rejected it.",
    },
}


def assert_failed(output: Output, expected: str) -> None:
    assert output.exit_code == 2, output.stdout
    assert isinstance(output.exception, SystemExit), output.exception
    assert expected in output.stderr
    assert "Traceback" not in output.stderr
    assert output.stdout == ""


@pytest.mark.parametrize("language", ["en", "pl"])
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:4840", "opc.tcp://", "127.0.0.1:4840", "opc.tcp://:4840"]
)
def test_browse_rejects_invalid_url(url: str, language: str) -> None:
    output = invoke(url, language=language)

    expected = ERROR_TEXTS["invalid_url"][language].format(url=url)
    assert_failed(output, expected)


@pytest.mark.parametrize("language", ["en", "pl"])
def test_browse_masks_password_in_url(language: str) -> None:
    output = invoke("opc.tcp://user:geheim@127.0.0.1:4840", language=language)

    assert output.exit_code == 2
    assert "geheim" not in output.stderr
    assert "opc.tcp://user:***@127.0.0.1:4840" in output.stderr


@pytest.mark.parametrize("language", ["en", "pl"])
def test_browse_unreachable_server_fails(language: str) -> None:
    url = f"opc.tcp://127.0.0.1:{free_tcp_port()}"

    output = invoke(url, language=language)

    assert_failed(output, ERROR_TEXTS["unreachable"][language].format(url=url))


@pytest.mark.parametrize("language", ["en", "pl"])
def test_browse_silent_server_times_out(language: str) -> None:
    with silent_listener() as url:
        output = invoke(url, "--timeout", "0.5", language=language)

    assert_failed(output, ERROR_TEXTS["timeout"][language].format(url=url))


@pytest.mark.parametrize("language", ["en", "pl"])
async def test_browse_server_without_machinery_fails(language: str) -> None:
    async with plain_server() as url:
        output = await invoke_in_thread(url, language=language)

    assert_failed(output, ERROR_TEXTS["no_machinery"][language].format(url=url))


@pytest.mark.parametrize("language", ["en", "pl"])
async def test_browse_server_without_machines_folder(language: str) -> None:
    async with plain_server(MACHINERY_URI) as url:
        output = await invoke_in_thread(url, language=language)

    assert_failed(output, ERROR_TEXTS["no_machines_folder"][language].format(url=url))


@pytest.mark.parametrize("language", ["en", "pl"])
async def test_browse_anonymous_login_rejected(language: str) -> None:
    async with plain_server(MACHINERY_URI, anonymous=False) as url:
        output = await invoke_in_thread(url, language=language)

    assert_failed(output, ERROR_TEXTS["rejected"][language].format(url=url))


@pytest.mark.parametrize("language", ["en", "pl"])
async def test_browse_secured_only_server_rejected(language: str, tmp_path: Path) -> None:
    async with secure_server(ServerSecurity(trusted_clients=tmp_path / "trusted")) as server:
        url = server.endpoint.geturl()
        output = await invoke_in_thread(url, language=language)

    opening = ERROR_TEXTS["rejected"][language].format(url=url).split(" (")[0]
    assert_failed(output, f"{opening} (the server offers only secured endpoints)")
    assert f"kooperant agent trust {url}" in output.stderr


@pytest.mark.parametrize("language", ["en", "pl"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "5000000"])
def test_browse_rejects_invalid_timeout(value: str, language: str) -> None:
    output = invoke("opc.tcp://127.0.0.1:4840", "--timeout", value, language=language)

    expected = {
        "en": f"Invalid value for --timeout: {float(value)}.",
        "pl": f"Błędna wartość --timeout: {float(value)}.",
    }[language]
    assert_failed(output, expected)
