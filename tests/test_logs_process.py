"""The log options of the ``kooperant`` command, run as a process like a service runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kooperant.net import free_tcp_port
from server.broker_accounts import mosquitto_password_line
from tests.conftest import REPO_ROOT
from tests.support.mosquitto import OwnMosquitto, running

BROKER_PASSWORD = "Broker-Secret-7f3a"
OPCUA_PASSWORD = "Opcua-Secret-91bd"
# Starting Python and importing the adapters takes a few seconds on a loaded machine.
START_SECONDS = 60.0
LINE_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d [A-Z]+ [\w.]+: ")


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


def write_config(folder: Path, broker_url: str) -> Path:
    """Write an agent config with known passwords for the broker and an OPC UA adapter."""
    (folder / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    opcua_port = free_tcp_port()
    path = folder / "agent.yaml"
    text = f"""
        member: acme
        cluster: logs-test
        broker:
          url: {broker_url}
          username: acme
          password: {BROKER_PASSWORD}
          reconnect_min_seconds: 0.2
          reconnect_max_seconds: 0.5
        policy: policy.yaml
        audit_log: audit.db
        status: {{enabled: false}}
        resources:
          press-1: {{name: Press}}
        adapters:
          - type: opcua
            name: plc
            url: opc.tcp://127.0.0.1:{opcua_port}
            username: operator
            password: {OPCUA_PASSWORD}
            nodes:
              - resource: press-1
                node: "ns=2;s=State"
                states: {{"1": executing}}
    """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def environment(**extra: str) -> dict[str, str]:
    variables = {
        key: value for key, value in os.environ.items() if not key.startswith("KOOPERANT_")
    }
    return {**variables, "KOOPERANT_LANG": "en", **extra}


def run_agent_until(
    arguments: list[str], config: Path, log_files: list[Path], pattern: str, env: dict[str, str]
) -> Finished:
    """Run ``kooperant ARGUMENTS agent run`` until ``pattern`` is in a log file, then SIGTERM."""
    command = [sys.executable, "-m", "kooperant", *arguments, "agent", "run", "-c", str(config)]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not any(pattern in read_all(path) for path in log_files):
            if process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Finished(process.returncode, stdout, stderr)


def read_all(path: Path) -> str:
    """Return the text of ``path`` and its rotated files ``NAME.1`` to ``NAME.N``, oldest first."""
    rotated = path.parent.glob(f"{path.name}.*")
    files = [*sorted(rotated, key=lambda file: int(file.suffix[1:]), reverse=True), path]
    return "".join(file.read_text("utf-8") for file in files if file.exists())


@pytest.fixture
def rejecting_broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    """Start a Mosquitto whose user ``acme`` has another password than the agent config's."""
    folder = tmp_path / "broker"
    folder.mkdir()
    password_file = folder / "passwords"
    password_file.write_text(mosquitto_password_line("acme", "another-password") + "\n")
    try:
        broker = OwnMosquitto(folder, password_file=password_file)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    with running(broker) as started:
        yield started


def test_rejected_login_leaks_no_password(tmp_path: Path, rejecting_broker: OwnMosquitto) -> None:
    config = write_config(tmp_path, rejecting_broker.url)
    log_file = tmp_path / "logs" / "agent.log"
    arguments = ["--verbose", "--log-file", str(log_file), "--log-max-megabytes", "0.001"]
    arguments += ["--log-backups", "1000"]

    finished = run_agent_until(
        arguments, config, [log_file], "check broker.username", environment()
    )

    text = read_all(log_file)
    assert "check broker.username" in text, text[-3000:]
    for output in (text, finished.stdout, finished.stderr):
        assert BROKER_PASSWORD not in output
        assert OPCUA_PASSWORD not in output
    assert log_file.with_name("agent.log.1").exists(), "no rotation at 1000 bytes"
    for path in log_file.parent.iterdir():
        # A record longer than the limit goes into a file of its own, whole.
        if path.stat().st_size > 1000:
            assert path.read_text("utf-8").count("\n") == 1, path
    for line in text.splitlines():
        assert LINE_START.match(line), line


def test_unreachable_broker_json_from_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"mqtt://127.0.0.1:{free_tcp_port()}")
    log_file = tmp_path / "agent.log"
    env = environment(KOOPERANT_LOG_FILE=str(log_file), KOOPERANT_LOG_FORMAT="json")

    finished = run_agent_until([], config, [log_file], "MQTT broker", env)

    lines = log_file.read_text("utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert any("MQTT broker" in event["message"] for event in events), lines
    for event in events:
        assert set(event) >= {"time", "level", "logger", "message"}, event
    for output in ("\n".join(lines), finished.stdout, finished.stderr):
        assert BROKER_PASSWORD not in output
        assert OPCUA_PASSWORD not in output
    assert finished.stderr == ""


def test_option_overrides_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"mqtt://127.0.0.1:{free_tcp_port()}")
    from_option = tmp_path / "option.log"
    from_environment = tmp_path / "environment.log"
    env = environment(KOOPERANT_LOG_FILE=str(from_environment), KOOPERANT_LOG_FORMAT="json")
    arguments = ["--log-file", str(from_option), "--log-format", "text"]

    run_agent_until(arguments, config, [from_option], "MQTT broker", env)

    assert not from_environment.exists()
    first_line = from_option.read_text("utf-8").splitlines()[0]
    assert LINE_START.match(first_line), first_line


def run_with_log_file(log_file: Path, language: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kooperant", "--log-file", str(log_file), "adapter"],
        cwd=REPO_ROOT,
        env={**environment(), "KOOPERANT_LANG": language},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Cannot write the log file {path}: Is a directory. Give --log-file"),
        ("pl", "Nie można zapisywać pliku dziennika {path}: Is a directory. Podaj w --log-file"),
    ],
)
def test_log_file_directory_error(tmp_path: Path, language: str, expected: str) -> None:
    finished = run_with_log_file(tmp_path, language)

    assert finished.returncode == 2
    assert expected.format(path=tmp_path) in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Cannot write the log file {path}: Not a directory."),
        ("pl", "Nie można zapisywać pliku dziennika {path}: Not a directory."),
    ],
)
def test_log_file_under_file_error(tmp_path: Path, language: str, expected: str) -> None:
    (tmp_path / "plain").write_text("not a folder")
    log_file = tmp_path / "plain" / "logs" / "agent.log"

    finished = run_with_log_file(log_file, language)

    assert finished.returncode == 2
    assert expected.format(path=log_file) in finished.stderr
