"""``kooperant server run`` and ``kooperant server ingest``: broker options, bad values, ingest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kooperant.i18n import Language, use_language
from kooperant.protocol import offer_topic
from server.cli import app as server_app
from server.storage import Storage
from tests.server.helpers import machine_offer

KEEP_ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "KOOPERANT_LANG"}


def run_cli(*arguments: str, language: str = "en") -> subprocess.CompletedProcess[str]:
    """Run ``kooperant server`` in a new process, where the help text takes ``language``."""
    return subprocess.run(
        [sys.executable, "-m", "kooperant", "server", *arguments],
        capture_output=True,
        text=True,
        # A wide terminal keeps rich from wrapping the help text inside its boxes.
        env={**KEEP_ENVIRONMENT, "KOOPERANT_LANG": language, "COLUMNS": "400"},
        timeout=30,
        check=False,
    )


def invoke(*arguments: str, language: Language = "en") -> Result:
    """Run ``kooperant server`` in this process; errors are worded in ``language``."""
    with use_language(language):
        return CliRunner().invoke(server_app, list(arguments))


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'k.db'}"


@pytest.mark.parametrize("command", ["run", "ingest"])
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ("--broker", "mqtt://127.0.0.1:1", "--shared-group", "g1"),
            "needs a client id of its own",
        ),
        (
            ("--broker", "mqtt://127.0.0.1:1", "--client-id", "w 1"),
            "Invalid MQTT client id 'w 1' (--client-id)",
        ),
        (
            ("--broker", "mqtt://127.0.0.1:1", "--client-id", "w1", "--shared-group", "a/b"),
            "Invalid shared subscription group 'a/b' (--shared-group)",
        ),
        (
            ("--broker", "mqtt://127.0.0.1:1", "--session-expiry", "0"),
            "Invalid MQTT session expiry 0 (--session-expiry)",
        ),
        (
            ("--broker", "mqtt://127.0.0.1:1", "--mqtt-protocol", "3"),
            "Invalid MQTT protocol version '3' (--mqtt-protocol)",
        ),
        (
            ("--broker", "mqtts://127.0.0.1:1", "--broker-ca-file", "/nonexistent/ca.pem"),
            "The file /nonexistent/ca.pem given with --broker-ca-file does not exist",
        ),
        (
            ("--broker", "mqtt://127.0.0.1:1", "--broker-cert-file", "/nonexistent/c.pem"),
            "--broker-cert-file applies only to a TLS connection",
        ),
        (
            ("--broker", "mqtt://127.0.0.1:1", "--broker-password-file", "/nonexistent/pw"),
            "Cannot read the broker password file /nonexistent/pw",
        ),
        (
            (
                "--broker",
                "mqtts://127.0.0.1:1",
                "--broker-key-password-file",
                "/nonexistent/kp",
            ),
            "Cannot read the private key password file /nonexistent/kp",
        ),
    ],
)
def test_cli_bad_broker_option_exits_2(
    database: str, command: str, arguments: tuple[str, ...], expected: str
) -> None:
    result = invoke(command, "--database", database, *arguments)

    assert result.exit_code == 2, result.output
    assert expected in result.stderr


@pytest.mark.parametrize("command", ["run", "ingest"])
def test_cli_password_without_username_exits_2(tmp_path: Path, database: str, command: str) -> None:
    password_file = tmp_path / "broker-password"
    password_file.write_text("s3cret\n", encoding="utf-8")

    result = invoke(
        command,
        "--database",
        database,
        "--broker",
        "mqtt://127.0.0.1:1",
        "--broker-password-file",
        str(password_file),
    )

    assert result.exit_code == 2, result.output
    assert "--broker-password-file was given without --broker-username" in result.stderr
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output


def test_cli_run_embedded_broker_rejects_shared_group(database: str) -> None:
    completed = run_cli("run", "--database", database, "--client-id", "w1", "--shared-group", "g1")

    assert completed.returncode == 2, completed.stderr
    assert "--shared-group g1 needs an external broker" in completed.stderr


def test_cli_run_embedded_broker_rejects_mqtt5(database: str) -> None:
    result = invoke("run", "--database", database, "--mqtt-protocol", "5")

    assert result.exit_code == 2, result.output
    assert "supports only MQTT 3.1.1" in result.stderr


def test_cli_ingest_without_broker_in_polish(database: str) -> None:
    result = invoke("ingest", "--database", database, language="pl")

    assert result.exit_code == 2, result.output
    assert "wymaga brokera: podaj go opcją --broker" in result.stderr


def test_cli_ingest_unmigrated_database_exits_2(database: str) -> None:
    result = invoke("ingest", "--database", database, "--broker", "mqtt://127.0.0.1:1")

    assert result.exit_code == 2, result.output
    assert "kooperant server migrate" in result.stderr


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "How long, in seconds, the broker keeps the session"),
        ("pl", "Jak długo (w sekundach) broker przechowuje sesję"),
    ],
)
def test_cli_ingest_help_in_both_languages(language: str, expected: str) -> None:
    completed = run_cli("ingest", "--help", language=language)

    assert completed.returncode == 0, completed.stderr
    text = " ".join(completed.stdout.split())
    for option in (
        "--client-id",
        "--shared-group",
        "--session-expiry",
        "--mqtt-protocol",
        "--broker-ca-file",
        "--broker-cert-file",
        "--broker-key-file",
    ):
        assert option in text
    assert expected in text


@pytest.mark.mosquitto
def test_cli_ingest_stores_and_stops(tmp_path: Path, mosquitto_url: str, cluster_id: str) -> None:
    database = f"sqlite:///{tmp_path / 'k.db'}"
    storage = Storage(database)
    storage.migrate()
    client_id = f"ingest-{cluster_id}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kooperant",
            "server",
            "ingest",
            "--database",
            database,
            "--broker",
            mosquitto_url,
            "--cluster",
            cluster_id,
            "--client-id",
            client_id,
            "--session-expiry",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**KEEP_ENVIRONMENT, "KOOPERANT_LANG": "en"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        publish_retained(mosquitto_url, cluster_id, tmp_path)
        stored = wait_for_history(storage, cluster_id)
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        clear_retained(mosquitto_url, cluster_id)
        storage.close()

    assert first_line.strip() == f"Receiving from {mosquitto_url} as client {client_id}."
    assert stored == 1
    assert process.returncode == 0, errors
    assert "Ingest stopped." in output
    assert "Traceback" not in errors


def publish_retained(url: str, cluster: str, folder: Path) -> None:
    offer = machine_offer(cluster=cluster)
    payload_file = folder / "offer.json"
    payload_file.write_bytes(offer.to_payload())
    host, port = url.removeprefix("mqtt://").split(":")
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            host,
            "-p",
            port,
            "-q",
            "1",
            "-r",
            "-t",
            offer_topic(cluster, offer.member, offer.resource),
            "-f",
            str(payload_file),
        ],
        check=True,
        timeout=10,
    )


def clear_retained(url: str, cluster: str) -> None:
    host, port = url.removeprefix("mqtt://").split(":")
    topic = offer_topic(cluster, "acme", "cnc-5ax-01")
    subprocess.run(
        ["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-r", "-t", topic, "-n"],
        check=True,
        timeout=10,
    )


def wait_for_history(storage: Storage, cluster: str) -> int:
    """Return the number of stored offers of the test resource once there is one, or 0."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        count = storage.count_history(cluster, "acme", "cnc-5ax-01")
        if count:
            return count
        # Another process writes the database, so there is no event to wait on.
        time.sleep(0.05)
    return 0
