"""``kooperant agent run``: exit codes and localized errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiomqtt
import pytest
from typer.testing import CliRunner

from agent.cli import EXIT_CONFIG_ERROR, app
from kooperant.protocol import offer_topic, status_topic
from tests.support.certificates import CertificateAuthority

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path, broker_url: str, cluster: str = "pomorskie-metal") -> Path:
    (folder / "policy.yaml").write_text(
        "share:\n  - resource: cnc-1\n    fields: [name, free_hours]\n", encoding="utf-8"
    )
    path = folder / "agent.yaml"
    path.write_text(
        f"member: acme\ncluster: {cluster}\nbroker:\n  url: {broker_url}\n"
        # No session is kept after the test, because the machine's broker is shared.
        f"  client_id: {cluster}-agent\n  session_expiry_seconds: 0\npolicy: policy.yaml\n"
        "status: {enabled: false}\nresources:\n  cnc-1: {name: DMU 50, kind: machine}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("language", "heading", "reason"),
    [
        ("en", "Invalid configuration", "invalid URL 'mqt://x'"),
        ("pl", "Błędna konfiguracja", "nieprawidłowy adres 'mqt://x'"),
    ],
)
def test_run_invalid_config_exits_2(
    tmp_path: Path, language: str, heading: str, reason: str
) -> None:
    path = write_config(tmp_path, "mqt://x")

    result = CliRunner().invoke(
        app, ["run", "--config", str(path)], env={"KOOPERANT_LANG": language}
    )

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert heading in result.stderr
    assert f"{path}:4: broker.url: {reason}" in result.stderr


def write_tls_config(folder: Path, tls: str) -> Path:
    """Write a config for an ``mqtts://`` broker with the ``tls`` section given as YAML flow."""
    path = write_config(folder, "mqtts://127.0.0.1:1")
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            "  session_expiry_seconds: 0\n", f"  session_expiry_seconds: 0\n  tls: {tls}\n"
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("command", ["run", "check"])
def test_run_unusable_ca_file_exits_2(tmp_path: Path, command: str) -> None:
    path = write_tls_config(tmp_path, "{ca_file: agent.yaml}")

    result = CliRunner().invoke(app, [command, "--config", str(path)], env={"KOOPERANT_LANG": "en"})

    assert result.exit_code == EXIT_CONFIG_ERROR, result.output
    assert f"{path}:7: broker.tls.ca_file: cannot use the TLS file: loading TLS CA file " in (
        result.stderr
    )
    assert str(tmp_path / "agent.yaml") in result.stderr
    assert "refused" not in result.output
    assert "Traceback" not in result.output


def test_run_key_as_certificate_exits_2(tmp_path: Path) -> None:
    authority = CertificateAuthority.create(tmp_path / "pki")
    client = authority.issue_client("acme")
    path = write_tls_config(tmp_path, f"{{cert_file: {client.key_file}}}")

    result = CliRunner().invoke(app, ["run", "--config", str(path)], env={"KOOPERANT_LANG": "pl"})

    assert result.exit_code == EXIT_CONFIG_ERROR, result.output
    assert f"{path}:7: broker.tls.cert_file: nie można użyć pliku TLS: " in result.stderr
    assert str(client.key_file) in result.stderr


def test_run_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    result = CliRunner().invoke(
        app, ["run", "--config", str(missing)], env={"KOOPERANT_LANG": "en"}
    )

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert f"{missing}: file not found" in result.stderr


@pytest.mark.mosquitto
async def test_run_publishes_and_exits_0_on_sigterm(
    tmp_path: Path, mosquitto_url: str, cluster_id: str
) -> None:
    path = write_config(tmp_path, mosquitto_url, cluster_id)
    topic = offer_topic(cluster_id, "acme", "cnc-1")

    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-sub") as client:
        await client.subscribe(topic, qos=1)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from agent.cli import app; app()",
            "run",
            "--config",
            str(path),
            cwd=REPO_ROOT,
            env={**os.environ, "KOOPERANT_LANG": "en"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(8):
                message = await anext(aiter(client.messages))
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 8)
            await client.publish(topic, b"", qos=1, retain=True)
            await client.publish(status_topic(cluster_id, "acme"), b"", qos=1, retain=True)

    assert isinstance(message.payload, bytes)
    assert b'"name":"DMU 50"' in message.payload
    assert process.returncode == 0, stderr.decode()
    assert "Agent acme publishes offers" in stdout.decode()
    assert "Agent stopped." in stdout.decode()
