"""``kooperant agent init`` in a pseudo-terminal: every question answered, in Polish and English."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
import yaml

from kooperant.demo.machine_park import PARK_MACHINES, MachinePark
from tests.support.park_thread import machine_park_in_thread

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPT_TIMEOUT_SECONDS = 60
PASSWORD = "tajne hasło 1"


@dataclass(frozen=True)
class Wording:
    """The prompts and answers of one language, as regular expressions and typed text."""

    language: str
    member: str
    invalid: str
    cluster: str
    broker_url: str
    username: str
    password: str
    opcua_url: str
    found: str
    choice: str
    skip: str
    export_schedule: str
    export_other: str
    host: str
    yes: str
    host_resource: str
    output: str
    audit_log: str
    check_clean: str
    next_steps: str


WORDINGS = [
    Wording(
        language="en",
        member=r"Your company's id in the cluster \(member\): ",
        invalid=r"Invalid value: invalid member id '-acme'",
        cluster=r"The cluster's id \(cluster\): ",
        broker_url=r"broker URL \(mqtt:// or mqtts://\) \[mqtt://127\.0\.0\.1:1883\]: ",
        username=r"Broker user name \(empty = anonymous\): ",
        password=r"Broker password \(hidden; empty = none\): ",
        opcua_url=r"OPC UA server URL: ",
        found=r"machines found",
        choice=r"keep it without a list of machines \(k\)\? \[s\]: ",
        skip="s",
        export_schedule=r"Production plan, CSV or XLSX \(schedule\): ",
        export_other=r"\((warehouse|stock|it_team|jpk_mag|edi_epp)\): ",
        host=r"Share the free resources of this computer \(CPU, memory, disk\)\? \[y/N\]: ",
        yes="y",
        host_resource=r"Resource id of this computer \[[^\]]+\]: ",
        output=r"Folder to write agent.yaml and policy.yaml to \[[^\]]+\]: ",
        audit_log=r"Audit log file \(.*its folder\) \[[^\]]+\]: ",
        check_clean=r"is valid and has no warnings",
        next_steps=r"Next steps:",
    ),
    Wording(
        language="pl",
        member=r"Identyfikator firmy w klastrze \(member\): ",
        invalid=r"Błędna wartość: nieprawidłowy identyfikator",
        cluster=r"Identyfikator klastra \(cluster\): ",
        broker_url=r"brokera MQTT klastra \(mqtt:// lub mqtts://\) \[mqtt://127\.0\.0\.1:1883\]: ",
        username=r"Login do brokera \(puste = bez logowania\): ",
        password=r"Hasło do brokera \(niewidoczne; puste = bez hasła\): ",
        opcua_url=r"Adres serwera OPC UA: ",
        found=r"znaleziono \d+ maszyn",
        choice=r"zachować go bez listy maszyn \(z\)\? \[o\]: ",
        skip="o",
        export_schedule=r"Plan produkcji, CSV lub XLSX \(schedule\): ",
        export_other=r"\((warehouse|stock|it_team|jpk_mag|edi_epp)\): ",
        host=r"Udostępniać wolne zasoby tego komputera \(procesor, pamięć, dysk\)\? \[t/N\]: ",
        yes="t",
        host_resource=r"Identyfikator zasobu tego komputera \[[^\]]+\]: ",
        output=r"Folder, do którego zapisać agent.yaml i policy.yaml \[[^\]]+\]: ",
        audit_log=r"Plik dziennika audytu \(.*jego folderze\) \[[^\]]+\]: ",
        check_clean=r"jest poprawna i bez ostrzeżeń",
        next_steps=r"Dalsze kroki:",
    ),
]


@pytest.fixture(scope="module")
def park() -> Iterator[MachinePark]:
    with machine_park_in_thread() as running:
        yield running


def spawn_init(language: str, folder: Path, *options: str) -> pexpect.spawn:
    environment = dict(os.environ)
    environment.update({"KOOPERANT_LANG": language, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200"})
    return pexpect.spawn(
        sys.executable,
        ["-m", "kooperant", "agent", "init", *options],
        cwd=str(folder),
        env=environment,
        encoding="utf-8",
        timeout=PROMPT_TIMEOUT_SECONDS,
        dimensions=(50, 200),
    )


@pytest.mark.parametrize("wording", WORDINGS, ids=lambda wording: wording.language)
def test_wizard_answers_every_prompt(
    tmp_path: Path, park: MachinePark, mosquitto_url: str, free_port: int, wording: Wording
) -> None:
    output = tmp_path / "site"
    plan = tmp_path / "plan.csv"
    transcript: list[str] = []
    child = spawn_init(wording.language, tmp_path)

    def answer(prompt: str, text: str) -> None:
        child.expect(prompt)
        transcript.append(child.before + child.after)
        child.sendline(text)

    answer(wording.member, "-acme")
    child.expect(wording.invalid)
    answer(wording.member, "acme-metal")
    answer(wording.cluster, "pomorskie-metal")
    answer(wording.broker_url, mosquitto_url)
    answer(wording.username, "acme-agent")
    answer(wording.password, PASSWORD)
    answer(wording.opcua_url, park.endpoint)
    child.expect(wording.found)
    answer(wording.opcua_url, f"opc.tcp://127.0.0.1:{free_port}")
    answer(wording.choice, wording.skip)
    answer(wording.opcua_url, "")
    answer(wording.export_schedule, str(plan))
    for _ in range(5):
        answer(wording.export_other, "")
    answer(wording.host, wording.yes)
    answer(wording.host_resource, "serwer-testowy")
    answer(wording.output, str(output))
    answer(wording.audit_log, "state/audit.db")
    child.expect(wording.check_clean)
    child.expect(wording.next_steps)
    child.expect(pexpect.EOF)
    transcript.append(child.before)
    child.close()

    assert child.exitstatus == 0, "".join(transcript)
    assert PASSWORD not in "".join(transcript)
    config = yaml.safe_load((output / "agent.yaml").read_text("utf-8"))
    assert config["member"] == "acme-metal"
    assert config["audit_log"] == "state/audit.db"
    assert config["cluster"] == "pomorskie-metal"
    assert config["broker"]["username"] == "acme-agent"
    assert config["broker"]["password"] == "${file:secrets/broker-password}"
    opcua, host = config["adapters"]
    assert opcua["url"] == park.endpoint
    assert sorted(opcua["machines"]) == sorted(machine.browse_name for machine in PARK_MACHINES)
    assert f"opc.tcp://127.0.0.1:{free_port}" not in (output / "agent.yaml").read_text("utf-8")
    assert host == {"type": "host", "name": "host", "resource": "serwer-testowy"}
    assert re.search(r"^  # - type: schedule$", (output / "agent.yaml").read_text("utf-8"), re.M)
    secret = output / "secrets" / "broker-password"
    assert secret.read_text("utf-8") == PASSWORD
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert yaml.safe_load((output / "policy.yaml").read_text("utf-8"))["share"] == []


def test_wizard_keeps_unbrowsed_server(tmp_path: Path, free_port: int) -> None:
    english = WORDINGS[0]
    taken_folder = tmp_path / "taken"
    taken_folder.mkdir()
    (taken_folder / "agent.yaml").write_text("member: other\n", encoding="utf-8")
    output = tmp_path / "site"
    unreachable = f"opc.tcp://127.0.0.1:{free_port}"
    # KOOPERANT_LANG selects Polish, and --lang en must take precedence.
    child = spawn_init("pl", tmp_path, "--lang", "en")
    transcript: list[str] = []

    def answer(prompt: str, text: str) -> None:
        child.expect(prompt)
        transcript.append(child.before + child.after)
        child.sendline(text)

    answer(english.member, "acme")
    answer(english.cluster, "c1")
    answer(english.broker_url, "")
    answer(english.username, "")
    answer(english.opcua_url, unreachable)
    answer(english.choice, "x")
    child.expect(r"'x' is not a choice")
    answer(english.choice, "k")
    answer(english.opcua_url, "")
    for _ in range(6):
        answer(r"\((schedule|warehouse|stock|it_team|jpk_mag|edi_epp)\): ", "")
    answer(english.host, "maybe")
    child.expect(r"'maybe' is not an answer")
    answer(english.host, "n")
    answer(english.output, str(taken_folder))
    child.expect(r"The folder .*taken already contains agent\.yaml\.")
    answer(r"quit without writing \(q\)\? \[a\]: ", "a")
    answer(english.output, str(output))
    answer(english.audit_log, str(tmp_path))
    child.expect(rf"Invalid value: {re.escape(str(tmp_path))} is a folder")
    answer(english.audit_log, str(tmp_path / "data" / "audit.db"))
    child.expect(english.next_steps)
    child.expect(pexpect.EOF)
    transcript.append(child.before)
    child.close()

    # The kept server cannot be reached, so the check reports it and exits with 1.
    assert child.exitstatus == 1, "".join(transcript)
    assert (taken_folder / "agent.yaml").read_text("utf-8") == "member: other\n"
    config_text = (output / "agent.yaml").read_text("utf-8")
    config = yaml.safe_load(config_text)
    assert config["broker"] == {"url": "mqtt://127.0.0.1:1883", "username": None}
    assert config["audit_log"] == str(tmp_path / "data" / "audit.db")
    assert config["adapters"] == [
        {"type": "opcua", "name": "opcua-127.0.0.1", "url": unreachable, "machines": {}}
    ]
    assert "Not browsed during setup" in config_text
    assert not (output / "secrets").exists()
