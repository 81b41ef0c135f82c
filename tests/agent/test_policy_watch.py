"""The policy file watcher: stable content only, last valid policy kept on every kind of error."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.policy import Policy
from agent.policy_watch import PolicyWatcher

ONE_RULE = "share:\n  - resource: cnc-1\n    fields: [name]\n"
TWO_RULES = ONE_RULE + "  - resource: cnc-2\n    fields: [name, state]\n"


class Recorder:
    """Collects what the watcher reports."""

    def __init__(self) -> None:
        self.policies: list[Policy] = []
        self.errors: list[ConfigError] = []

    def watcher(self, path: Path, poll_seconds: float = 1.0) -> PolicyWatcher:
        return PolicyWatcher(
            path, self.policies.append, self.errors.append, variables={}, poll_seconds=poll_seconds
        )


def resources(policy: Policy) -> set[str]:
    return set(policy.resources)


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(ONE_RULE, encoding="utf-8")
    return path


def test_watcher_applies_after_two_polls(policy_path: Path) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)

    watcher.poll()
    after_first = len(recorder.policies)
    watcher.poll()

    assert after_first == 0
    assert [resources(policy) for policy in recorder.policies] == [{"cnc-1"}]
    assert recorder.errors == []


def test_watcher_applies_valid_edit_once(policy_path: Path) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)
    watcher.poll()
    watcher.poll()

    policy_path.write_text(TWO_RULES, encoding="utf-8")
    for _ in range(4):
        watcher.poll()

    assert [resources(policy) for policy in recorder.policies] == [
        {"cnc-1"},
        {"cnc-1", "cnc-2"},
    ]
    assert watcher.reloads == 2


def test_watcher_skips_content_changing_between_polls(policy_path: Path) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)
    watcher.poll()
    watcher.poll()

    # An editor writing the file in parts: each poll reads different bytes.
    half = TWO_RULES[: len(TWO_RULES) - 10]
    policy_path.write_text(half, encoding="utf-8")
    watcher.poll()
    policy_path.write_text(TWO_RULES[:-3], encoding="utf-8")
    watcher.poll()
    policy_path.write_text(TWO_RULES, encoding="utf-8")
    watcher.poll()
    during_writes = len(recorder.policies)
    watcher.poll()

    assert during_writes == 1
    assert [resources(policy) for policy in recorder.policies][-1] == {"cnc-1", "cnc-2"}
    assert recorder.errors == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("share: [\n", "policy.yaml:2: invalid YAML", id="syntax-error"),
        pytest.param(
            ONE_RULE + "    colour: red\n",
            "policy.yaml:4: share[0].colour: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            TWO_RULES[: TWO_RULES.index("state") + 2],
            "invalid YAML",
            id="truncated",
        ),
    ],
)
def test_watcher_keeps_policy_on_invalid_edit(
    policy_path: Path, content: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)
    watcher.poll()
    watcher.poll()

    policy_path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="agent.policy_watch"):
        for _ in range(5):
            watcher.poll()

    assert len(recorder.policies) == 1
    assert len(recorder.errors) == 1
    assert expected in str(recorder.errors[0])
    digest = hashlib.sha256(content.encode()).hexdigest()[:12]
    (record,) = caplog.records
    assert f"Policy {policy_path} is invalid (sha256 {digest})" in record.getMessage()
    assert expected in record.getMessage()


def test_watcher_reports_deleted_file(policy_path: Path) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)
    watcher.poll()
    watcher.poll()

    policy_path.unlink()
    watcher.poll()
    watcher.poll()
    watcher.poll()

    assert len(recorder.policies) == 1
    assert len(recorder.errors) == 1
    assert (
        str(recorder.errors[0])
        == f"{policy_path}: file not found; restore the file or check the path"
    )


def test_watcher_reports_non_utf8_file(policy_path: Path) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)

    policy_path.write_bytes(b"share: []\n# \xff\n")
    watcher.poll()
    watcher.poll()

    assert recorder.policies == []
    assert str(recorder.errors[0]) == (
        f"{policy_path}: the file is not UTF-8 text (byte 12); save it as UTF-8"
    )


def test_watcher_applies_fix_after_error(policy_path: Path) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)
    watcher.poll()
    watcher.poll()
    policy_path.write_text("share: [\n", encoding="utf-8")
    watcher.poll()
    watcher.poll()

    # Back to the content applied before the error: applied again, so the caller can clear it.
    policy_path.write_text(ONE_RULE, encoding="utf-8")
    watcher.poll()
    watcher.poll()

    assert len(recorder.errors) == 1
    assert len(recorder.policies) == 2


def test_watcher_logs_reload_with_hash(policy_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)
    policy_path.write_text(TWO_RULES, encoding="utf-8")

    with caplog.at_level(logging.INFO, logger="agent.policy_watch"):
        watcher.poll()
        watcher.poll()

    digest = hashlib.sha256(TWO_RULES.encode()).hexdigest()[:12]
    assert [record.getMessage() for record in caplog.records] == [
        f"Policy {policy_path} loaded (sha256 {digest}, 2 rules)"
    ]


async def test_watcher_run_polls_until_stop(policy_path: Path) -> None:
    applied = asyncio.Event()
    policies: list[Policy] = []

    def apply(policy: Policy) -> None:
        policies.append(policy)
        applied.set()

    errors: list[ConfigError] = []
    watcher = PolicyWatcher(policy_path, apply, errors.append, variables={}, poll_seconds=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))

    await asyncio.wait_for(applied.wait(), 5)
    applied.clear()
    await asyncio.to_thread(policy_path.write_text, TWO_RULES, "utf-8")
    await asyncio.wait_for(applied.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 1)

    assert [resources(policy) for policy in policies] == [{"cnc-1"}, {"cnc-1", "cnc-2"}]
    assert errors == []


def test_watcher_logs_problems_in_english(
    policy_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    recorder = Recorder()
    watcher = recorder.watcher(policy_path)
    watcher.poll()
    watcher.poll()

    policy_path.write_text(ONE_RULE + "    colour: red\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="agent.policy_watch"):
        watcher.poll()
        watcher.poll()

    (record,) = caplog.records
    assert "share[0].colour: unknown key" in record.getMessage()
