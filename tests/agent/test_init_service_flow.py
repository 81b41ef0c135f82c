"""From ``kooperant agent init`` to an installed service that reads the broker password.

The flow an operator follows on one visit: ``init`` with a broker login against a Mosquitto that
checks passwords and the demo machine park, ``agent check``, ``install-service --print``, then
``install-service`` (with the fake host of the service tests, so no real user or unit is made),
and finally the config loaded as the agent loads it. init runs as root, so its default audit
log is in a folder that does not exist yet and that install-service creates for the service
user. A forked child that switches to the service user's ids shows whether that user can
really read the secret file, before and after ``--grant-secrets``. Switching ids needs root.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner, Result

from agent import init_answers, service_cli
from agent.cli import app
from agent.config import load_config
from agent.service_access import UserIds
from agent.systemd_unit import MARKER
from agent.yamlfile import YamlDocument
from kooperant.demo.machine_park import MachinePark
from tests.agent.service_samples import FakeHost
from tests.support.mosquitto import OwnMosquitto, running
from tests.support.park_thread import machine_park_in_thread

UNIT = "kooperant-agent.service"
USERNAME = "acme-agent"
PASSWORD = "Haslo-Brokera-7"
SERVICE_UID = 54_331
SERVICE_GID = 54_332
CONNECT_TIMEOUT_SECONDS = 5.0

pytestmark = [
    pytest.mark.skipif(os.getuid() != 0, reason="switching to the service user's ids needs root"),
    pytest.mark.skipif(
        shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed"
    ),
]


@pytest.fixture(scope="module")
def park() -> Iterator[MachinePark]:
    with machine_park_in_thread() as started:
        yield started


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder every user may enter, unlike pytest's tmp_path below a 0700 folder."""
    path = Path(tempfile.mkdtemp(prefix="kooperant-flow-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def broker(folder: Path) -> Iterator[OwnMosquitto]:
    """A Mosquitto of the test's own that accepts only ``USERNAME`` with ``PASSWORD``."""
    broker_folder = folder / "broker"
    broker_folder.mkdir()
    passwords = broker_folder / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), USERNAME, PASSWORD],
        check=True,
        capture_output=True,
    )
    with running(OwnMosquitto(broker_folder, password_file=passwords)) as started:
        yield started


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost(root=False)
    fake.new_user_uid = SERVICE_UID
    monkeypatch.setattr(service_cli, "system_host", fake)
    monkeypatch.setattr(service_cli, "is_windows", lambda: False)
    # The test's own Python may be below /root, which the service user cannot enter. The
    # system Python replaces it, as a virtual environment in /opt would.
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    monkeypatch.setattr(sys, "prefix", "/usr")
    return fake


def invoke(*arguments: str) -> Result:
    return CliRunner().invoke(app, list(arguments), env={"KOOPERANT_LANG": "en"})


def password_read_as(uid: int, gid: int, config: Path) -> str:
    """Return what a process with ``uid`` and ``gid`` reads as the broker password of ``config``.

    The child is forked, so it reuses the modules imported here and needs no Python of its own.
    Returns ``"<denied>"`` when loading fails, which is how the agent fails at start.
    """
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(reader)
        code = 0
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            document = YamlDocument.load(config, {})
            text = str(document.data["broker"]["password"])
        except BaseException:
            text = "<denied>"
        try:
            os.write(writer, text.encode("utf-8"))
        except BaseException:
            code = 1
        os._exit(code)

    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        text = pipe.read().decode("utf-8")
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return text


def connect_reason(port: int, username: str | None, password: str | None) -> str:
    """Connect to the broker on ``port`` and return the CONNACK reason's name."""
    reasons: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="kooperant-flow-test")
    client.username_pw_set(username, password)
    client.on_connect = lambda _client, _data, _flags, reason, _props: reasons.append(str(reason))
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS
    while not reasons and time.monotonic() < deadline:
        time.sleep(0.02)
    client.loop_stop()
    client.disconnect()
    assert reasons, f"no CONNACK within {CONNECT_TIMEOUT_SECONDS} s"
    return reasons[0]


def test_init_to_service_reads_password(
    folder: Path,
    park: MachinePark,
    broker: OwnMosquitto,
    host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Below ``folder``, which the service user may enter, in place of /var/lib/kooperant.
    audit_log = folder / "var-lib-kooperant" / "kooperant-audit.db"
    monkeypatch.setattr(init_answers, "SERVICE_AUDIT_LOG", audit_log)
    monkeypatch.setattr(init_answers, "is_linux_root", lambda: True)
    typed = folder / "typed-password.txt"
    typed.write_text(PASSWORD + "\n", encoding="utf-8")
    site = folder / "etc"

    # 1. init with a broker login, against the machine park; it runs check itself.
    created = invoke(
        "init",
        "--non-interactive",
        "--member",
        "acme",
        "--cluster",
        "pomorskie-metal",
        "--broker-url",
        broker.url,
        "--broker-username",
        USERNAME,
        "--broker-password-file",
        str(typed),
        "--opcua",
        park.endpoint,
        "--output",
        str(site),
    )
    config = site / "agent.yaml"
    secret = site / "secrets" / "broker-password"
    assert created.exit_code == 0, created.output
    assert "--grant-secrets" in created.stdout
    assert PASSWORD not in created.output
    assert PASSWORD not in config.read_text(encoding="utf-8")
    assert "password: ${file:secrets/broker-password}" in config.read_text(encoding="utf-8")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    assert (site / "agent-config.schema.json").is_file()
    assert (site / "policy.schema.json").is_file()
    assert f'audit_log: "{audit_log}"\n' in config.read_text(encoding="utf-8")
    assert not audit_log.parent.exists()

    # 2. check on its own.
    checked = invoke("check", "--config", str(config))
    assert checked.exit_code == 0, checked.output

    # 3. The unit, printed without root.
    printed = invoke(
        "install-service",
        "--config",
        str(config),
        "--print",
    )
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith(MARKER)
    assert f"--config {config}" in printed.stdout
    assert "User=kooperant\n" in printed.stdout
    assert PASSWORD not in printed.stdout

    # 4. Installed as root: rejected while the service user cannot read the password.
    host.root = True
    host.users["kooperant"] = UserIds(
        "kooperant", SERVICE_UID, frozenset({SERVICE_GID}), SERVICE_GID
    )
    units = folder / "units"
    options = ["--config", str(config)]
    assert password_read_as(SERVICE_UID, SERVICE_GID, config) == "<denied>"

    rejected = invoke("install-service", *options, "--unit-dir", str(units))

    assert rejected.exit_code == 1
    assert f"sudo chgrp {SERVICE_GID} {secret} && sudo chmod g+r {secret}" in rejected.stderr
    assert not (units / UNIT).exists()

    installed = invoke("install-service", *options, "--unit-dir", str(units), "--grant-secrets")

    assert installed.exit_code == 0, installed.output
    assert f"Gave the group {SERVICE_GID} access to {secret} (g+r)." in installed.stdout
    assert "User=kooperant\n" in (units / UNIT).read_text(encoding="utf-8")
    assert audit_log.parent.stat().st_uid == SERVICE_UID
    assert host.commands[-1] == ["systemctl", "enable", "--now", UNIT]
    assert password_read_as(SERVICE_UID, SERVICE_GID, config) == PASSWORD
    assert password_read_as(SERVICE_UID + 1, SERVICE_GID + 1, config) == "<denied>"

    # 5. The config as the agent loads it.
    loaded = load_config(config)
    assert loaded.broker.username == USERNAME
    assert loaded.broker.password is not None
    assert loaded.broker.password.get_secret_value() == PASSWORD
    assert loaded.secret_files == (secret,)
    assert loaded.audit_log_path == audit_log
    assert connect_reason(broker.port, USERNAME, PASSWORD) == "Success"
    assert connect_reason(broker.port, USERNAME, "wrong") == "Not authorized"
