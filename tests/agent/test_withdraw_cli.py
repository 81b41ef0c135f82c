"""``kooperant agent withdraw`` and ``restore``: records, messages sent, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.audit import AuditLog
from agent.cli import app
from agent.outbox import Outbox
from agent.withdrawals import WithdrawalTable
from kooperant.protocol import WithdrawalReason, offer_topic, parse_withdrawal, withdrawal_topic

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
MEMBER = "acme"
POLICY = """\
share:
  - resource: cnc-1
    publish_as: frezarka-1
    fields: [name]
"""


def invoke(*arguments: str, language: str = "en") -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(arguments), env={"KOOPERANT_LANG": language})
    return result.exit_code, result.stdout, result.stderr


def write_config(folder: Path, cluster: str, broker_url: str = "mqtt://127.0.0.1:1") -> Path:
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = folder / "agent.yaml"
    path.write_text(
        f"member: {MEMBER}\ncluster: {cluster}\nbroker:\n  url: {broker_url}\n"
        "policy: policy.yaml\naudit_log: audit.db\n"
        "resources:\n  cnc-1: {name: DMU 50, kind: machine}\n  laser-2: {kind: machine}\n",
        encoding="utf-8",
    )
    return path


def record_offer(folder: Path, cluster: str, resource: str) -> str:
    topic = offer_topic(cluster, MEMBER, resource)
    with AuditLog(folder / "audit.db") as log:
        log.record(topic, b'{"kind":"machine"}', NOW)
    return topic


def withdrawals(folder: Path) -> dict[str, bool]:
    with WithdrawalTable(folder / "audit.db") as table:
        return {key: item.delete_history for key, item in table.read().items()}


@pytest.fixture
def cluster() -> str:
    return "withdraw-cli"


def test_withdraw_unknown_resource_exits_2(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    record_offer(tmp_path, cluster, "old-press")

    status, _, error = invoke("withdraw", "cnc-9", "--config", str(config))

    assert status == 2
    assert error.startswith(f"Unknown resource 'cnc-9': it is not in the config {config}")
    assert "Known resources: cnc-1, frezarka-1, laser-2, old-press." in error
    assert withdrawals(tmp_path) == {}


def test_withdraw_invalid_config_exits_2(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    config.write_text(config.read_text() + "colour: red\n", encoding="utf-8")

    status, _, error = invoke("withdraw", "cnc-1", "--config", str(config))

    assert status == 2
    assert f"{config}:10: colour: " in error
    assert not (tmp_path / "audit.db").exists()


def test_withdraw_missing_config_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"

    status, _, error = invoke("withdraw", "cnc-1", "--config", str(missing))

    assert status == 2
    assert f"{missing}: file not found" in error


def test_withdraw_corrupt_log_exits_2(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    (tmp_path / "audit.db").write_bytes(b"not a database at all " * 300)

    status, _, error = invoke("withdraw", "cnc-1", "--config", str(config))

    assert status == 2
    assert error.startswith(f"Cannot use the agent's local file: audit log {tmp_path}")


def test_withdraw_public_id_records_internal(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)

    status, output, _ = invoke(
        "withdraw", "frezarka-1", "--delete-history", "--config", str(config)
    )

    assert status == 0
    assert withdrawals(tmp_path) == {"cnc-1": True}
    assert output.splitlines() == [
        "Recorded the withdrawal of cnc-1 with a request to delete its history. If the agent "
        "is running, it stops publishing the offer within a second; otherwise it sends the "
        "withdrawal at its next start.",
        "According to the audit log and the queue the broker keeps no offer of this resource, "
        "so nothing was queued.",
    ]


def test_withdraw_queues_clear_and_withdrawal(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    topic = record_offer(tmp_path, cluster, "frezarka-1")
    withdrawal = withdrawal_topic(cluster, MEMBER, "frezarka-1")

    status, output, _ = invoke("withdraw", "cnc-1", "--delete-history", "--config", str(config))

    with Outbox(tmp_path / "audit.db") as outbox:
        queued = outbox.queued()
    with AuditLog(tmp_path / "audit.db") as log:
        rows = log.count()
    assert status == 0, output
    assert output.splitlines()[1] == (
        f"Queued for the broker: {topic}, {withdrawal}. A running agent sends them within a "
        "second of reaching the broker; otherwise the agent sends them at its next start."
    )
    assert [(message.topic, message.payload == b"") for message in queued] == [
        (topic, True),
        (withdrawal, False),
    ]
    sent = parse_withdrawal(queued[1].payload)
    assert (sent.resource, sent.reason, sent.delete_history) == (
        "frezarka-1",
        WithdrawalReason.WITHDRAWN,
        True,
    )
    assert sent.envelope is not None
    assert sent.envelope.seq == queued[1].seq
    assert withdrawals(tmp_path) == {"cnc-1": True}
    assert rows == 1


def test_withdraw_twice_queues_once(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    record_offer(tmp_path, cluster, "frezarka-1")
    invoke("withdraw", "cnc-1", "--config", str(config))

    status, output, _ = invoke("withdraw", "cnc-1", "--config", str(config))

    with Outbox(tmp_path / "audit.db") as outbox:
        queued = outbox.queued()
    assert status == 0, output
    assert "so nothing was queued" in output
    assert len(queued) == 2


def test_withdraw_audit_only_resource(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    record_offer(tmp_path, cluster, "old-press")

    status, _, _ = invoke("withdraw", "old-press", "--config", str(config))

    assert status == 0
    assert withdrawals(tmp_path) == {"old-press": False}


def test_withdraw_output_in_polish(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)

    status, output, _ = invoke("withdraw", "laser-2", "--config", str(config), language="pl")

    assert status == 0
    assert output.splitlines()[0] == (
        "Zapisano wycofanie laser-2. Jeśli agent działa, przestaje publikować tę ofertę w ciągu "
        "sekundy; jeśli nie, wyśle wycofanie przy następnym uruchomieniu."
    )


def test_restore_public_id_removes_record(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    invoke("withdraw", "cnc-1", "--config", str(config))

    status, output, _ = invoke("restore", "frezarka-1", "--config", str(config))

    assert status == 0
    assert output.splitlines() == [
        "Removed the withdrawal of cnc-1. If the agent is running, it publishes the offer again "
        "in its next cycle, otherwise at its next start, as far as the policy permits it."
    ]
    assert withdrawals(tmp_path) == {}


def test_restore_without_record_exits_2(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)
    invoke("withdraw", "laser-2", "--config", str(config))

    status, _, error = invoke("restore", "cnc-1", "--config", str(config))

    assert status == 2
    assert error.strip() == "Resource 'cnc-1' is not withdrawn. Withdrawn resources: laser-2."
    assert withdrawals(tmp_path) == {"laser-2": False}


def test_restore_unknown_resource_exits_2(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)

    status, _, error = invoke("restore", "cnc-9", "--config", str(config))

    assert status == 2
    assert error.strip() == "Resource 'cnc-9' is not withdrawn. Withdrawn resources: none."


def test_withdraw_without_resource_exits_2(tmp_path: Path, cluster: str) -> None:
    config = write_config(tmp_path, cluster)

    status, _, error = invoke("withdraw", "--config", str(config))

    assert status == 2
    assert "Missing argument 'RESOURCE'" in error
