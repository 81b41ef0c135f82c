"""``kooperant agent init --non-interactive``: files written from flags, and every bad flag."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from agent.config import load_config
from agent.init_cli import EXIT_INIT_FAILED
from kooperant.demo.machine_park import PARK_MACHINES, MachinePark
from tests.support.park_thread import machine_park_in_thread


@pytest.fixture(scope="module")
def park() -> Iterator[MachinePark]:
    with machine_park_in_thread() as running:
        yield running


def init(*arguments: str, language: str = "en") -> tuple[int, str, str]:
    """Run ``kooperant agent init`` with ``arguments``; return exit code, stdout and stderr."""
    result = CliRunner().invoke(
        app, ["init", "--non-interactive", *arguments], env={"KOOPERANT_LANG": language}
    )
    return result.exit_code, result.stdout, result.stderr


def test_init_park_config_passes_check(
    tmp_path: Path, park: MachinePark, mosquitto_url: str
) -> None:
    code, stdout, stderr = init(
        "--member",
        "acme-metal",
        "--cluster",
        "pomorskie-metal",
        "--broker-url",
        mosquitto_url,
        "--opcua",
        park.endpoint,
        "--output",
        str(tmp_path),
    )

    assert code == 0, stdout + stderr
    assert f"Browsing {park.endpoint}" in stdout
    assert f"{park.endpoint}: {len(PARK_MACHINES)} machines found" in stdout
    assert f"Policy {tmp_path / 'policy.yaml'} is valid and has no warnings" in stdout
    config = load_config(tmp_path / "agent.yaml")
    assert config.member == "acme-metal"
    assert config.broker.url == mosquitto_url
    machines = yaml.safe_load((tmp_path / "agent.yaml").read_text("utf-8"))["adapters"][0]
    assert machines["type"] == "opcua"
    assert machines["url"] == park.endpoint
    assert sorted(machines["machines"]) == sorted(park.machines)
    assert set(config.resources) == set(machines["machines"].values())


def test_init_then_check_as_commands(tmp_path: Path, park: MachinePark, mosquitto_url: str) -> None:
    # The console command as a user types it: init in one process, check in another.
    environment = {**os.environ, "KOOPERANT_LANG": "en"}
    output = tmp_path / "site"
    init_command = [sys.executable, "-m", "kooperant", "agent", "init", "--non-interactive"]
    init_command += ["--member", "acme-metal", "--cluster", "pomorskie-metal"]
    init_command += ["--broker-url", mosquitto_url, "--opcua", park.endpoint]
    init_command += ["--skip-check", "--output", str(output)]
    written = subprocess.run(
        init_command, capture_output=True, text=True, env=environment, timeout=120
    )
    assert written.returncode == 0, written.stdout + written.stderr

    check_command = [sys.executable, "-m", "kooperant", "agent", "check"]
    check_command += ["--config", str(output / "agent.yaml")]
    checked = subprocess.run(
        check_command, capture_output=True, text=True, env=environment, timeout=120
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "is valid and has no warnings" in checked.stdout
    resources = sorted(load_config(output / "agent.yaml").resources)
    assert len(resources) == len(PARK_MACHINES)
    assert ", ".join(resources) in checked.stdout


def test_init_park_policy_shares_nothing(
    tmp_path: Path, park: MachinePark, mosquitto_url: str
) -> None:
    arguments = ["--member", "acme", "--cluster", "c1", "--broker-url", mosquitto_url]
    code, stdout, stderr = init(
        *arguments, "--opcua", park.endpoint, "--output", str(tmp_path), "--skip-check"
    )

    assert code == 0, stdout + stderr
    policy_text = (tmp_path / "policy.yaml").read_text("utf-8")
    assert yaml.safe_load(policy_text)["share"] == []
    config = load_config(tmp_path / "agent.yaml")
    for resource in config.resources:
        assert f"# - resource: {resource}\n" in policy_text
    assert "Checking" not in stdout


def test_init_enabled_example_rule_loads(
    tmp_path: Path, park: MachinePark, mosquitto_url: str
) -> None:
    arguments = ["--member", "acme", "--cluster", "c1", "--broker-url", mosquitto_url]
    init(*arguments, "--opcua", park.endpoint, "--output", str(tmp_path), "--skip-check")
    policy_path = tmp_path / "policy.yaml"
    lines = policy_path.read_text("utf-8").splitlines()

    # Enable the first machine's rule as the file's header describes it.
    start = next(index for index, line in enumerate(lines) if line.startswith("  # - resource:"))
    end = start + 1
    while lines[end].startswith("  #   "):
        end += 1
    lines[start:end] = ["  " + line.removeprefix("  # ") for line in lines[start:end]]
    policy_path.write_text("\n".join(lines).replace("share: []", "share:") + "\n", "utf-8")

    config = load_config(tmp_path / "agent.yaml")
    first_machine = lines[start].removeprefix("  - resource: ")
    assert config.sharing_policy.resources == {first_machine}


def test_init_password_goes_to_secret_file(tmp_path: Path) -> None:
    password_file = tmp_path / "password.txt"
    password_file.write_text("s3cret pass\n", encoding="utf-8")
    output = tmp_path / "site"

    code, stdout, stderr = init(
        "--member",
        "acme",
        "--cluster",
        "c1",
        "--broker-username",
        "acme-agent",
        "--broker-password-file",
        str(password_file),
        "--output",
        str(output),
        "--skip-check",
    )

    assert code == 0, stdout + stderr
    secret = output / "secrets" / "broker-password"
    assert secret.read_text("utf-8") == "s3cret pass"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    config_text = (output / "agent.yaml").read_text("utf-8")
    assert "s3cret" not in config_text
    assert "s3cret" not in stdout + stderr
    broker = yaml.safe_load(config_text)["broker"]
    assert broker["username"] == "acme-agent"
    # NOTE: until the YAML loader supports ${file:PATH}, load_config takes this text itself
    # as the password.
    assert broker["password"] == "${file:secrets/broker-password}"


def test_init_exports_written(tmp_path: Path) -> None:
    stock = tmp_path / "stany.csv"
    stock.write_text("Indeks;Nazwa;Ilość;J.m.\nBL-1;Blacha;10;ark.\n", encoding="utf-8")
    code, stdout, stderr = init(
        "--member",
        "acme",
        "--cluster",
        "c1",
        "--export",
        f"stock={stock}",
        "--export",
        f"schedule={tmp_path / 'plan.csv'}",
        "--export",
        f"it_team={tmp_path / 'kalendarz.xlsx'}",
        "--output",
        str(tmp_path),
        "--skip-check",
    )

    assert code == 0, stdout + stderr
    text = (tmp_path / "agent.yaml").read_text("utf-8")
    adapters = yaml.safe_load(text)["adapters"]
    assert adapters == [{"type": "stock", "name": "stany-magazynowe", "path": str(stock)}]
    assert "  # - type: schedule\n" in text
    assert "  # - type: it_team\n" in text
    config = load_config(tmp_path / "agent.yaml")
    assert [adapter.name for adapter in config.adapters] == ["stany-magazynowe"]


def test_init_host_adapter_written(tmp_path: Path) -> None:
    code, stdout, stderr = init(
        "--member", "acme", "--cluster", "c1", "--host", "--output", str(tmp_path), "--skip-check"
    )

    assert code == 0, stdout + stderr
    adapters = yaml.safe_load((tmp_path / "agent.yaml").read_text("utf-8"))["adapters"]
    assert [adapter["type"] for adapter in adapters] == ["host"]
    resource = adapters[0]["resource"]
    assert f"# - resource: {resource}\n" in (tmp_path / "policy.yaml").read_text("utf-8")
    assert load_config(tmp_path / "agent.yaml").adapters[0].name == "host"


def test_init_without_sources_loads(tmp_path: Path) -> None:
    code, stdout, stderr = init("--member", "acme", "--cluster", "c1", "--output", str(tmp_path))

    assert code == 0, stdout + stderr
    assert load_config(tmp_path / "agent.yaml").adapters == ()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--cluster", "c1"], "Missing option --member"),
        (["--member", "acme"], "Missing option --cluster"),
        (["--member", "-acme", "--cluster", "c1"], "Invalid value of --member '-acme'"),
        (["--member", "acme", "--cluster", "c 1"], "Invalid value of --cluster 'c 1'"),
        (
            ["--member", "acme", "--cluster", "c1", "--broker-url", "http://x"],
            "Invalid value of --broker-url 'http://x'",
        ),
        (
            ["--member", "acme", "--cluster", "c1", "--broker-url", "mqtt://u:secret@x"],
            "Invalid value of --broker-url",
        ),
        (
            ["--member", "acme", "--cluster", "c1", "--broker-username", " "],
            "Invalid value of --broker-username ' '",
        ),
        (
            ["--member", "acme", "--cluster", "c1", "--export", "stock"],
            "Invalid value of --export 'stock': expected TYPE=PATH",
        ),
        (
            ["--member", "acme", "--cluster", "c1", "--export", "erp=plan.csv"],
            "Invalid value of --export 'erp=plan.csv': unknown export type 'erp'",
        ),
        (
            ["--member", "acme", "--cluster", "c1", "--broker-password-file", "pw.txt"],
            "--broker-password-file needs --broker-username",
        ),
        (
            ["--member", "acme", "--cluster", "c1", "--lang", "de"],
            "Invalid value of --lang 'de'",
        ),
    ],
)
def test_init_bad_flag_writes_nothing(tmp_path: Path, arguments: list[str], message: str) -> None:
    code, stdout, stderr = init(*arguments, "--output", str(tmp_path / "out"))

    assert code == EXIT_INIT_FAILED, stdout + stderr
    assert message in stderr
    assert "secret" not in stderr
    assert not (tmp_path / "out").exists()


def test_init_bad_member_in_polish(tmp_path: Path) -> None:
    code, _, stderr = init(
        "--member", "-acme", "--cluster", "c1", "--output", str(tmp_path), language="pl"
    )

    assert code == EXIT_INIT_FAILED
    assert "Błędna wartość opcji --member '-acme'" in stderr
    assert "Nic nie zostało zapisane." in stderr


@pytest.mark.parametrize("content", [None, "\n"])
def test_init_bad_password_file(tmp_path: Path, content: str | None) -> None:
    password_file = tmp_path / "password.txt"
    if content is not None:
        password_file.write_text(content, encoding="utf-8")
    output = tmp_path / "out"

    code, _, stderr = init(
        *("--member", "acme", "--cluster", "c1", "--broker-username", "agent"),
        *("--broker-password-file", str(password_file), "--output", str(output)),
    )

    assert code == EXIT_INIT_FAILED
    assert f"password file {password_file}" in stderr
    assert not output.exists()


def test_init_existing_file_needs_force(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    arguments = ["--member", "acme", "--cluster", "c1", "--output", str(tmp_path), "--skip-check"]

    code, _, stderr = init(*arguments)

    assert code == EXIT_INIT_FAILED
    assert f"The file {tmp_path / 'policy.yaml'} exists" in stderr
    assert "--force" in stderr
    assert not (tmp_path / "agent.yaml").exists()
    assert (tmp_path / "policy.yaml").read_text("utf-8") == "share: []\n"

    code, _, stderr = init(*arguments, "--force")

    assert code == 0, stderr
    assert "SHARES NOTHING" in (tmp_path / "policy.yaml").read_text("utf-8")


def test_init_unreachable_opcua_writes_nothing(tmp_path: Path, free_port: int) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port}"

    code, _, stderr = init(
        "--member", "acme", "--cluster", "c1", "--opcua", url, "--output", str(tmp_path / "out")
    )

    assert code == EXIT_INIT_FAILED
    assert "--opcua: " in stderr
    assert url in stderr
    assert not (tmp_path / "out").exists()


def test_init_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    output = blocker / "site"

    code, _, stderr = init("--member", "acme", "--cluster", "c1", "--output", str(output))

    assert code == EXIT_INIT_FAILED
    assert f"Cannot write to the folder {output}" in stderr
    assert "nothing was written" in stderr
