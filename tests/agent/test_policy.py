"""The sharing policy's decisions: deny by default, first matching rule, fields, public form."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.calendar import Shift, WorkingCalendar
from agent.policy import Policy, PolicyContext, Rule, WithheldReason, parse_policy
from kooperant.intervals import Interval
from kooperant.protocol import (
    COMMERCIAL_FIELDS,
    OPTIONAL_FIELDS,
    Amount,
    MachineState,
    Offer,
    Price,
    ResourceKind,
)

WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)
CALENDAR = WorkingCalendar(WARSAW, (Shift(frozenset(range(5)), time(6), time(22)),))
CONTEXT = PolicyContext(NOW, CALENDAR, WARSAW, tags={"blacha-2mm": frozenset({"nadwyzki"})})
HORIZON = Interval(NOW, NOW + timedelta(days=14))
# Top-level fields that leave whatever the rule lists; the aggregator enforces accepts_requests.
ENVELOPE = {"schema", "cluster", "member", "resource", "kind", "generated_at", "accepts_requests"}
POLICY_PATH = Path("policy.yaml")


def machine(resource: str = "cnc-1") -> Offer:
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


def supply(resource: str = "blacha-2mm") -> Offer:
    return Offer(
        cluster="pomorskie-metal",
        member="acme",
        resource=resource,
        kind=ResourceKind.SUPPLIES,
        generated_at=NOW,
        name="Blacha DC01 2 mm",
        amounts=(Amount("sheets", 40.0, "pcs"),),
        price=Price(42.5, "PLN", "sheet"),
        suppliers=("huta-a",),
        customers=("stocznia-b",),
    )


def policy(text: str) -> Policy:
    return parse_policy(text, POLICY_PATH, variables={})


def test_listed_fields_only() -> None:
    decision = Policy({"cnc-1": {"name", "free_hours"}}).decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert set(decision.offer.to_json()) == ENVELOPE | {"name", "free_hours"}
    assert decision.offer.free_hours == 12.5


def test_unmatched_resource_withheld() -> None:
    decision = Policy({"cnc-1": {"name"}}).decide(machine("secret-01"), CONTEXT)

    assert decision.offer is None
    assert decision.rule is None
    assert decision.withheld is WithheldReason.NO_RULE
    assert decision.public_resource is None
    assert decision.removed == ()
    assert decision.reason == "no rule matches resource 'secret-01'"


def test_empty_policy_denies_everything() -> None:
    assert Policy({}).decide(machine(), CONTEXT).offer is None
    assert policy("# nothing is shared\n").decide(machine(), CONTEXT).offer is None


def test_rule_without_fields_sends_envelope() -> None:
    decision = Policy({"cnc-1": ()}).decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert set(decision.offer.to_json()) == ENVELOPE


def test_removed_lists_unshared_fields() -> None:
    offer = dataclasses.replace(machine(), state_since=None, amounts=None)

    decision = Policy({"cnc-1": {"name", "free_hours"}}).decide(offer, CONTEXT)

    assert decision.removed == ("capabilities", "state", "horizon", "free_intervals")


def test_decision_names_rule_and_line() -> None:
    text = (
        "share:\n"
        "  - resource: cnc-1\n"
        "    fields: [name]\n"
        "  # The laser shares its free time only.\n"
        "  - resource: laser-2\n"
        "    fields: [free_hours, free_intervals]\n"
    )

    decision = policy(text).decide(machine("laser-2"), CONTEXT)

    assert decision.rule is not None
    assert decision.rule.number == 2
    assert decision.rule.line == 5
    assert decision.rule.location == "policy.yaml:5"
    assert decision.reason == "shared by rule 2 (policy.yaml:5)"
    assert decision.public_resource == "laser-2"


def test_all_excludes_commercial_fields() -> None:
    decision = policy("share:\n  - kind: supplies\n    fields: [all]\n").decide(supply(), CONTEXT)

    assert decision.offer is not None
    for field in COMMERCIAL_FIELDS:
        assert getattr(decision.offer, field) is None, field
    assert decision.offer.amounts == (Amount("sheets", 40.0, "pcs"),)
    assert decision.removed == COMMERCIAL_FIELDS


def test_commercial_field_listed_by_name() -> None:
    text = "share:\n  - kind: supplies\n    fields: [all, price]\n"

    decision = policy(text).decide(supply(), CONTEXT)

    assert decision.offer is not None
    assert decision.offer.price == Price(42.5, "PLN", "sheet")
    assert decision.offer.suppliers is None
    assert decision.offer.customers is None


def test_all_covers_every_other_field() -> None:
    decision = policy("share:\n  - kind: machine\n    fields: [all]\n").decide(machine(), CONTEXT)

    assert decision.offer is not None
    for field in OPTIONAL_FIELDS:
        if field not in COMMERCIAL_FIELDS:
            assert getattr(decision.offer, field) == getattr(machine(), field), field


@pytest.mark.parametrize(
    ("selector", "resource", "matched"),
    [
        ("resource: cnc-1", "cnc-1", True),
        ("resource: [cnc-1, laser-2]", "laser-2", True),
        ("resource: cnc-1", "cnc-2", False),
        ("kind: machine", "cnc-2", True),
        ("kind: [storage, supplies]", "cnc-2", False),
        ("tag: nadwyzki", "blacha-2mm", True),
        ("tag: [inne, nadwyzki]", "blacha-2mm", True),
        ("tag: nadwyzki", "cnc-1", False),
        ("{resource: blacha-2mm, kind: machine}", "blacha-2mm", False),
        ("{resource: blacha-2mm, kind: supplies, tag: nadwyzki}", "blacha-2mm", True),
    ],
)
def test_selector_matching(selector: str, resource: str, matched: bool) -> None:
    if selector.startswith("{"):
        text = f"share:\n  - {{{selector[1:-1]}, fields: [name]}}\n"
    else:
        text = f"share:\n  - {selector}\n    fields: [name]\n"
    offer = supply(resource) if resource == "blacha-2mm" else machine(resource)

    decision = policy(text).decide(offer, CONTEXT)

    assert decision.shared is matched


def test_first_matching_rule_applies() -> None:
    text = (
        "share:\n"
        "  - resource: cnc-1\n"
        "    fields: [name]\n"
        "  - kind: machine\n"
        "    fields: [name, state]\n"
    )
    rules = policy(text)

    first = rules.decide(machine("cnc-1"), CONTEXT)
    second = rules.decide(machine("cnc-2"), CONTEXT)

    assert first.rule is not None
    assert first.rule.number == 1
    assert first.offer is not None
    assert first.offer.state is None
    assert second.rule is not None
    assert second.rule.number == 2


def test_publish_as_and_name_replace_ids() -> None:
    text = (
        "share:\n"
        "  - resource: cnc-1\n"
        "    publish_as: frezarka-5osi\n"
        "    name: Frezarka 5-osiowa\n"
        "    fields: [name]\n"
    )

    decision = policy(text).decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert decision.offer.resource == "frezarka-5osi"
    assert decision.offer.name == "Frezarka 5-osiowa"
    assert decision.resource == "cnc-1"
    assert decision.public_resource == "frezarka-5osi"
    assert decision.transformations == (
        "published as frezarka-5osi",
        "name replaced by 'Frezarka 5-osiowa'",
    )


def test_name_unlisted_stays_out() -> None:
    text = "share:\n  - resource: cnc-1\n    name: Frezarka\n    fields: [state]\n"

    decision = policy(text).decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert decision.offer.name is None


def test_audience_resolved_from_groups() -> None:
    text = (
        "groups:\n"
        "  partnerzy: [metal-works, formy-sa]\n"
        "share:\n"
        "  - resource: cnc-1\n"
        "    fields: [name]\n"
        "    audience: {members: [zeta, formy-sa], groups: [partnerzy]}\n"
    )

    decision = policy(text).decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert decision.offer.audience == ("formy-sa", "metal-works", "zeta")
    assert decision.offer.to_json()["audience"] == ["formy-sa", "metal-works", "zeta"]


def test_audience_cluster_leaves_none() -> None:
    text = "share:\n  - resource: cnc-1\n    fields: [name]\n    audience: cluster\n"

    decision = policy(text).decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert decision.offer.audience is None
    assert "audience" not in decision.offer.to_json()


EXPIRING = (
    "share:\n"
    "  - resource: cnc-1\n"
    "    publish_as: frezarka\n"
    "    fields: [name]\n"
    "    expires: 2026-03-31\n"
    "  - kind: machine\n"
    "    fields: [state]\n"
    "    expires: 2026-03-15T12:00:00+01:00\n"
)
# The end of 31 March 2026 in Warsaw, after the change to summer time.
END_OF_MARCH = datetime(2026, 3, 31, 22, tzinfo=UTC)


def test_expiring_rule_sets_expires_at() -> None:
    decision = policy(EXPIRING).decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert decision.offer.expires_at == END_OF_MARCH
    assert decision.offer.to_json()["expires_at"] == "2026-04-01T00:00:00+02:00"


def test_expired_rule_is_skipped() -> None:
    decision = policy(EXPIRING.replace("2026-03-31", "2026-03-01")).decide(machine(), CONTEXT)

    assert decision.rule is not None
    assert decision.rule.number == 2
    assert decision.offer is not None
    assert decision.offer.state is MachineState.EXECUTING


def test_expired_only_rules_withhold() -> None:
    context = dataclasses.replace(CONTEXT, now=END_OF_MARCH)

    decision = policy(EXPIRING).decide(machine(), context)

    assert decision.offer is None
    assert decision.withheld is WithheldReason.EXPIRED
    assert decision.rule is not None
    assert decision.rule.number == 1
    assert decision.public_resource == "frezarka"
    assert decision.expired_at == END_OF_MARCH
    assert decision.reason == "rule 1 (policy.yaml:2) expired at 2026-04-01T00:00:00+02:00"


def test_later_rule_after_expiry() -> None:
    text = EXPIRING.replace("2026-03-15T12:00:00+01:00", "2027-01-01")
    context = dataclasses.replace(CONTEXT, now=END_OF_MARCH)

    decision = policy(text).decide(machine(), context)

    assert decision.rule is not None
    assert decision.rule.number == 2
    assert decision.offer is not None
    assert decision.offer.resource == "cnc-1"


def test_next_expiry_after_moment() -> None:
    rules = policy(EXPIRING)
    march_15 = datetime(2026, 3, 15, 11, tzinfo=UTC)

    assert rules.next_expiry(NOW, WARSAW) == march_15
    assert rules.next_expiry(march_15, WARSAW) == END_OF_MARCH
    assert rules.next_expiry(END_OF_MARCH, WARSAW) is None


def test_rule_expires_at_forms() -> None:
    offset = timezone(timedelta(hours=2))
    by_date = Rule(1, frozenset(), expires=date(2026, 6, 30))
    by_moment = Rule(1, frozenset(), expires=datetime(2026, 6, 30, 18, tzinfo=offset))

    assert by_date.expires_at(WARSAW) == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert by_moment.expires_at(WARSAW) == datetime(2026, 6, 30, 16, tzinfo=UTC)
    assert Rule(1, frozenset()).expires_at(WARSAW) is None


def test_mapping_form_expands_all() -> None:
    rules = Policy({"cnc-1": ["all", "price"]}).rules

    assert rules[0].fields == (set(OPTIONAL_FIELDS) - {"suppliers", "customers"})
    assert rules[0].location == "rule 1"


def test_resources_lists_named_ids() -> None:
    text = "share:\n  - resource: [a, b]\n    fields: []\n  - kind: machine\n    fields: []\n"

    assert policy(text).resources == {"a", "b"}


def test_shared_offer_accepts_requests_by_default() -> None:
    decision = policy("share:\n  - resource: cnc-1\n    fields: [name]\n").decide(
        machine(), CONTEXT
    )

    assert machine().accepts_requests is False
    assert decision.offer is not None
    assert decision.offer.accepts_requests is True
    assert decision.offer.to_json()["accepts_requests"] is True
    assert decision.notes == ()


def test_requests_switched_off_per_rule() -> None:
    rules = policy(
        "share:\n"
        "  - resource: cnc-1\n    fields: [name]\n    requests: false\n"
        "  - kind: machine\n    fields: [name]\n"
    )

    closed = rules.decide(machine(), CONTEXT)
    other = rules.decide(machine("cnc-2"), CONTEXT)

    assert closed.offer is not None
    assert closed.offer.accepts_requests is False
    assert closed.offer.to_json()["accepts_requests"] is False
    assert closed.transformations == (
        "capacity requests switched off: the aggregator rejects them",
    )
    assert other.offer is not None
    assert other.offer.accepts_requests is True


def test_requests_switch_survives_empty_fields() -> None:
    rules = policy("share:\n  - resource: cnc-1\n    fields: []\n    requests: false\n")

    decision = rules.decide(machine(), CONTEXT)

    assert decision.offer is not None
    assert decision.offer.to_json()["accepts_requests"] is False
