"""The sharing policy: deny by default, only listed fields leave."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.calendar import WorkingCalendar
from agent.errors import ConfigError
from agent.policy import Policy, PolicyContext, load_policy
from kooperant.intervals import Interval
from kooperant.protocol import Amount, MachineState, Offer, ResourceKind
from kooperant.protocol.offer import OPTIONAL_FIELDS

NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
CONTEXT = PolicyContext(
    NOW, WorkingCalendar(ZoneInfo("Europe/Warsaw"), ()), ZoneInfo("Europe/Warsaw")
)
HORIZON = Interval(NOW, datetime(2026, 3, 16, 8, tzinfo=UTC))


def full_offer(resource: str) -> Offer:
    return Offer(
        cluster="pomorskie-metal",
        member="acme",
        resource=resource,
        kind=ResourceKind.MACHINE,
        generated_at=NOW,
        name="DMU 50",
        capabilities=("5-axis-milling",),
        state=MachineState.EXECUTING,
        state_since=NOW,
        horizon=HORIZON,
        free_hours=12.5,
        free_intervals=(Interval(NOW, datetime(2026, 3, 2, 20, 30, tzinfo=UTC)),),
        amounts=(Amount("disk_free", 10.0, "GiB"),),
    )


def write_policy(folder: Path, text: str) -> Path:
    path = folder / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_listed_fields_only(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(tmp_path, "share:\n  - resource: cnc-1\n    fields: [name, free_hours]\n")
    )

    shared = policy.decide(full_offer("cnc-1"), CONTEXT).offer

    assert shared is not None
    assert shared.name == "DMU 50"
    assert shared.free_hours == 12.5
    for field in set(OPTIONAL_FIELDS) - {"name", "free_hours"}:
        assert getattr(shared, field) is None, field
    payload = shared.to_json()
    assert set(payload) == {
        "schema",
        "cluster",
        "member",
        "resource",
        "kind",
        "generated_at",
        "name",
        "free_hours",
    }


def test_unlisted_resource_never_leaves(tmp_path: Path) -> None:
    policy = load_policy(
        write_policy(tmp_path, "share:\n  - resource: cnc-1\n    fields: [name]\n")
    )

    assert policy.decide(full_offer("cnc-2"), CONTEXT).offer is None


def test_empty_policy_denies_everything(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "# nothing is shared\n"))

    assert policy.decide(full_offer("cnc-1"), CONTEXT).offer is None
    assert Policy({}).decide(full_offer("cnc-1"), CONTEXT).offer is None


def test_rule_with_no_fields_sends_envelope(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, "share:\n  - resource: cnc-1\n    fields: []\n"))

    shared = policy.decide(full_offer("cnc-1"), CONTEXT).offer

    assert shared is not None
    assert set(shared.to_json()) == {
        "schema",
        "cluster",
        "member",
        "resource",
        "kind",
        "generated_at",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [name, owner_phone]\n",
            ":3: share[0].fields[1]: unknown offer field 'owner_phone'; allowed fields: all, name,",
            id="unknown-field",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [name]\n    price: 10\n",
            ":4: share[0].price: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "shares:\n  - resource: cnc-1\n",
            ":1: shares: unknown key",
            id="unknown-top-key",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [name\n",
            ":4: invalid YAML",
            id="malformed-yaml",
        ),
        pytest.param(
            "share:\n  - resource: cnc/1\n    fields: [name]\n",
            ":2: share[0].resource: invalid resource id 'cnc/1'",
            id="bad-resource-id",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n",
            ":2: share[0].fields: missing required key",
            id="missing-fields",
        ),
        pytest.param("- cnc-1\n", ":1: expected a mapping", id="not-a-mapping"),
    ],
)
def test_policy_error_names_file_line_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write_policy(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_policy(path)

    assert f"{path}{expected}" in str(caught.value)


def test_decide_names_rule_and_line(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        "share:\n"
        "  - resource: cnc-1\n"
        "    fields: [name]\n"
        "  # The laser shares its free time only.\n"
        "  - resource: laser-2\n"
        "    fields: [free_hours, free_intervals]\n",
    )

    decision = load_policy(path).decide(full_offer("laser-2"), CONTEXT)

    assert decision.shared
    assert decision.rule is not None
    assert decision.rule.number == 2
    assert decision.rule.line == 5
    assert decision.rule.location == f"{path}:5"
    assert decision.reason == f"shared by rule 2 ({path}:5)"
    assert decision.removed == (
        "name",
        "capabilities",
        "state",
        "state_since",
        "horizon",
        "amounts",
    )
    assert decision.offer == load_policy(path).decide(full_offer("laser-2"), CONTEXT).offer


def test_decide_unnamed_resource_withheld() -> None:
    decision = Policy({"cnc-1": frozenset({"name"})}).decide(full_offer("secret-01"), CONTEXT)

    assert not decision.shared
    assert decision.offer is None
    assert decision.rule is None
    assert decision.removed == ()
    assert decision.reason == "no rule matches resource 'secret-01'"


def test_decide_removed_skips_empty_fields() -> None:
    offer = dataclasses.replace(full_offer("cnc-1"), state_since=None, amounts=None)

    decision = Policy({"cnc-1": frozenset({"name", "free_hours"})}).decide(offer, CONTEXT)

    assert decision.removed == ("capabilities", "state", "horizon", "free_intervals")
    assert decision.rule is not None
    assert decision.rule.location == "rule 1"
