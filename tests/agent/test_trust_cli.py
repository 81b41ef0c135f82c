"""Tests of ``kooperant agent trust`` against in-process asyncua servers.

The command runs ``asyncio.run`` itself, so the async tests invoke it in a worker thread while the
server keeps serving in the test's event loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from asyncua import Server, ua
from typer.testing import CliRunner

from adapters.opcua.certificates import Pki, certificate_file_name, fingerprint
from agent.cli import app
from kooperant.net import free_tcp_port
from tests.support.secure_server import ServerSecurity, der, secure_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

POLICY = "share: []\n"


class Output:
    """Exit status, stdout and stderr of one ``kooperant agent trust`` run."""

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


def invoke(*arguments: str, answer: str | None = None, language: str = "en") -> Output:
    result = CliRunner().invoke(
        app, ["trust", *arguments], input=answer, env={"KOOPERANT_LANG": language}
    )
    return Output(result.exit_code, result.stdout, result.stderr)


async def invoke_in_thread(
    *arguments: str, answer: str | None = None, language: str = "en"
) -> Output:
    return await asyncio.to_thread(invoke, *arguments, answer=answer, language=language)


@asynccontextmanager
async def running_server(tmp_path: Path) -> AsyncIterator[tuple[str, ServerSecurity]]:
    security = ServerSecurity(
        tmp_path / "server-trusted",
        policies=(
            ua.SecurityPolicyType.NoSecurity,
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
        ),
    )
    async with secure_server(security) as server:
        yield server.endpoint.geturl(), security


def write_config(folder: Path, adapters: str) -> Path:
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = folder / "agent.yaml"
    path.write_text(
        "member: acme\ncluster: pomorskie-metal\nbroker:\n  url: mqtt://127.0.0.1:1\n"
        f"policy: policy.yaml\nadapters:\n{adapters}",
        encoding="utf-8",
    )
    return path


def opcua_entry(name: str, url: str, pki_dir: str = "pki") -> str:
    return f"  - type: opcua\n    name: {name}\n    url: {url}\n    pki_dir: {pki_dir}\n"


def assert_failed(output: Output, expected: str) -> None:
    assert output.exit_code == 2, output.stdout
    assert expected in output.stderr
    assert "Traceback" not in output.stderr


async def test_trust_confirmed(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    async with running_server(tmp_path) as (url, security):
        output = await invoke_in_thread(url, "--pki-dir", str(pki.folder), answer="y\n")

    assert security.certificate is not None
    stored = pki.trusted_dir / certificate_file_name(security.certificate)
    assert output.exit_code == 0, output.stderr
    assert stored.read_bytes() == der(security.certificate)
    own = pki.own_certificate()
    expected_lines = [
        f"Server {url}, trusted certificates folder {pki.trusted_dir}",
        "Certificate 1:",
        "  subject: CN=kooperant test server",
        "  issuer: (self-signed)",
        f"  SHA-256: {fingerprint(security.certificate)}",
        "  application URI: urn:kooperant:test:secure-server",
        "  security: None/None, Basic256Sha256/Sign, Aes256_Sha256_RsaPss/SignAndEncrypt",
        "  status: not trusted yet",
        f"  file: {own.certificate_path} (created now)",
        f"  SHA-256: {own.fingerprint}",
        "Trust this certificate? [y/N] ",
        f"Trusted: stored {stored}",
    ]
    for line in expected_lines:
        assert line in output.stdout


async def test_trust_declined(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    async with running_server(tmp_path) as (url, _):
        output = await invoke_in_thread(url, "--pki-dir", str(pki.folder), answer="n\n")

    assert output.exit_code == 1
    assert "The certificate was not trusted; nothing was stored." in output.stdout
    assert not pki.trusted_dir.exists()


async def test_trust_no_answer_declines(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    async with running_server(tmp_path) as (url, _):
        output = await invoke_in_thread(url, "--pki-dir", str(pki.folder), answer="")

    assert output.exit_code == 1
    assert "The certificate was not trusted; nothing was stored." in output.stdout
    assert not pki.trusted_dir.exists()


async def test_trust_yes_option(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    async with running_server(tmp_path) as (url, security):
        output = await invoke_in_thread(url, "--pki-dir", str(pki.folder), "--yes")
        again = await invoke_in_thread(url, "--pki-dir", str(pki.folder), "--yes")

    assert security.certificate is not None
    assert output.exit_code == 0, output.stderr
    assert "[y/N]" not in output.stdout
    assert pki.trusted_path(security.certificate) is not None
    assert again.exit_code == 0
    assert "status: already trusted" in again.stdout
    assert "Every certificate of the server is trusted already." in again.stdout
    assert "(created now)" not in again.stdout


async def test_trust_polish(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    async with running_server(tmp_path) as (url, security):
        output = await invoke_in_thread(
            url, "--pki-dir", str(pki.folder), answer="tak\n", language="pl"
        )

    assert security.certificate is not None
    assert output.exit_code == 0, output.stderr
    assert f"Serwer {url}, folder zaufanych certyfikatów {pki.trusted_dir}" in output.stdout
    assert "  wystawca: (samopodpisany)" in output.stdout
    assert "Zaufać temu certyfikatowi? [t/N]" in output.stdout
    assert "Zaufano: zapisano" in output.stdout
    assert pki.trusted_path(security.certificate) is not None


async def test_trust_removes_rejected_copy(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    async with running_server(tmp_path) as (url, security):
        assert security.certificate is not None
        rejected = pki.reject(security.certificate)
        output = await invoke_in_thread(url, "--pki-dir", str(pki.folder), "--yes")

    assert output.exit_code == 0, output.stderr
    assert not rejected.exists()


async def test_trust_folder_from_config(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (url, security):
        config = write_config(
            tmp_path,
            opcua_entry("hall-a", "opc.tcp://127.0.0.1:4840", "other")
            + opcua_entry("hall-b", url, "certs"),
        )
        output = await invoke_in_thread(url, "--config", str(config), "--yes")

    assert security.certificate is not None
    assert output.exit_code == 0, output.stderr
    assert Pki(tmp_path / "certs").trusted_path(security.certificate) is not None
    assert not (tmp_path / "other").exists()


async def test_trust_adapter_option(tmp_path: Path) -> None:
    async with running_server(tmp_path) as (url, security):
        config = write_config(tmp_path, opcua_entry("hall-a", "opc.tcp://hall-a:4840", "hall"))
        output = await invoke_in_thread(
            url, "--config", str(config), "--adapter", "hall-a", "--yes"
        )

    assert security.certificate is not None
    assert output.exit_code == 0, output.stderr
    assert Pki(tmp_path / "hall").trusted_path(security.certificate) is not None


def test_trust_unknown_adapter(tmp_path: Path) -> None:
    config = write_config(tmp_path, opcua_entry("hall-a", "opc.tcp://hall-a:4840"))

    output = invoke(
        "opc.tcp://hall-a:4840", "--config", str(config), "--adapter", "hall-b", "--yes"
    )

    assert_failed(
        output,
        f"{config} has no opcua adapter named 'hall-b'. opcua adapters: hall-a "
        "(opc.tcp://hall-a:4840).",
    )


def test_trust_url_not_in_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, opcua_entry("hall-a", "opc.tcp://hall-a:4840"))

    output = invoke("opc.tcp://hall-b:4840", "--config", str(config))

    assert_failed(
        output,
        f"No opcua adapter in {config} has url opc.tcp://hall-b:4840. opcua adapters: hall-a "
        "(opc.tcp://hall-a:4840). Name the adapter with --adapter NAME.",
    )


def test_trust_invalid_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, "  - type: opcua\n    name: hall-a\n")

    output = invoke("opc.tcp://hall-a:4840", "--config", str(config))

    assert_failed(output, "Invalid configuration (file, line, key: problem):")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "Unknown where to store the certificate: give --config AGENT_CONFIG or --pki-dir"),
        (("--config", "agent.yaml", "--pki-dir", "pki"), "Give either --config or --pki-dir"),
        (("--adapter", "hall-a"), "--adapter needs --config"),
        (("--pki-dir", "pki", "--timeout", "0"), "Invalid value for --timeout: 0.0."),
    ],
)
def test_trust_bad_options(arguments: tuple[str, ...], message: str) -> None:
    output = invoke("opc.tcp://127.0.0.1:4840", *arguments)

    assert_failed(output, message)


@pytest.mark.parametrize("language", ["en", "pl"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:4840", "opc.tcp://", "opc.tcp://:4840"])
def test_trust_invalid_url(tmp_path: Path, url: str, language: str) -> None:
    output = invoke(url, "--pki-dir", str(tmp_path / "pki"), language=language)

    expected = {
        "en": f"Invalid URL {url}: give an OPC UA endpoint as opc.tcp://HOST:PORT",
        "pl": f"Błędny adres {url}: podaj adres serwera OPC UA w postaci opc.tcp://HOST:PORT",
    }[language]
    assert_failed(output, expected)
    assert not (tmp_path / "pki").exists()


@pytest.mark.parametrize("language", ["en", "pl"])
def test_trust_unreachable_server(tmp_path: Path, language: str) -> None:
    url = f"opc.tcp://127.0.0.1:{free_tcp_port()}"

    output = invoke(url, "--pki-dir", str(tmp_path / "pki"), "--yes", language=language)

    expected = {
        "en": f"Cannot connect to {url} (",
        "pl": f"Nie można połączyć się z {url} (",
    }[language]
    assert_failed(output, expected)


@pytest.mark.parametrize("language", ["en", "pl"])
def test_trust_silent_server_times_out(tmp_path: Path, language: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"opc.tcp://127.0.0.1:{listener.getsockname()[1]}"

        output = invoke(
            url, "--pki-dir", str(tmp_path / "pki"), "--timeout", "0.5", language=language
        )

    expected = {
        "en": f"Server {url} did not respond within 0.5 s. Check that an OPC UA server listens "
        "at this address, or increase --timeout.",
        "pl": f"Serwer {url} nie odpowiedział w ciągu 0.5 s. Sprawdź, czy pod tym adresem "
        "działa serwer OPC UA, albo zwiększ --timeout.",
    }[language]
    assert_failed(output, expected)


async def test_trust_server_without_certificate(tmp_path: Path) -> None:
    server = Server()
    await server.init()
    url = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server.set_endpoint(url)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    async with server:
        output = await invoke_in_thread(url, "--pki-dir", str(tmp_path / "pki"), "--yes")

    assert_failed(
        output,
        f"Server {url} sent no certificate; its endpoints: None/None. Security is not "
        "configured on it, so there is nothing to trust.",
    )
