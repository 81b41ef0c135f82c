"""Policy lint: valid rules that probably do not do what the owner meant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.policy import Policy, parse_policy
from agent.policy.lint import ENGLISH_TEMPLATES, PolicyWarning
from kooperant.protocol import ResourceKind

PATH = Path("policy.yaml")
WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 12, 7, 8, 20, tzinfo=UTC)
RESOURCES = {
    "cnc-1": ResourceKind.MACHINE,
    "laser-2": ResourceKind.MACHINE,
    "magazyn-b": ResourceKind.STORAGE,
}
TAGS = {"laser-2": frozenset({"hala-b"})}


def lint(text: str, horizon_days: int = 14) -> list[str]:
    policy = parse_policy(text, PATH)
    problems = policy.lint(RESOURCES, TAGS, horizon_days, now=NOW, zone=WARSAW)
    return [problem.format(PATH) for problem in problems]


def test_clean_policy_no_warnings() -> None:
    text = (
        "share:\n"
        "  - resource: cnc-1\n"
        "    fields: [name, free_hours]\n"
        "    bands: {free_hours: [0, 8]}\n"
        "    horizon_days: 14\n"
        "  - kind: storage\n"
        "    fields: [amounts]\n"
        "    bands: {pallet_places: [0, 50]}\n"
    )

    assert lint(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "share:\n  - resource: press-9\n    fields: [name]\n",
            "policy.yaml:2: share[0]: rule 1 matches no known resource (known: cnc-1, laser-2, "
            "magazyn-b); check its selectors",
            id="no-match-id",
        ),
        pytest.param(
            "share:\n  - tag: hala-a\n    fields: [name]\n",
            "policy.yaml:2: share[0]: rule 1 matches no known resource (known: cnc-1, laser-2, "
            "magazyn-b); check its selectors",
            id="no-match-tag",
        ),
        pytest.param(
            "share:\n"
            "  - resource: laser-2\n    fields: [name]\n"
            "  - kind: machine\n    fields: [name, state]\n",
            "policy.yaml:4: share[1]: rule 2 never applies to laser-2, because rule 1 "
            "(policy.yaml:2) matches first",
            id="shadowed",
        ),
        pytest.param(
            "share:\n"
            "  - kind: machine\n    fields: [name]\n    expires: 2026-12-31\n"
            "  - resource: [cnc-1, laser-2]\n    fields: [name]\n",
            "policy.yaml:5: share[1]: rule 2 applies to cnc-1, laser-2 only after rule 1 "
            "(policy.yaml:2) expires at 2027-01-01T00:00:00+01:00",
            id="shadowed-until-expiry",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [name]\n    expires: 2026-12-06\n",
            "policy.yaml:4: share[0].expires: rule 1 expired at 2026-12-07T00:00:00+01:00 and "
            "is skipped; remove it or change expires",
            id="expired",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [free_hours]\n    horizon_days: 30\n",
            "policy.yaml:4: share[0].horizon_days: horizon_days 30 is beyond the agent's "
            "horizon_days 14, so it limits nothing; lower it or remove it",
            id="horizon-beyond-agent",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [name]\n    bands:\n"
            "      free_hours: [0, 8]\n",
            "policy.yaml:4: share[0].bands.free_hours: bands.free_hours has no effect because "
            "free_hours is not in fields; add free_hours to fields or remove the band",
            id="band-free-hours-unlisted",
        ),
        pytest.param(
            "share:\n  - resource: magazyn-b\n    fields: [name]\n"
            "    bands: {pallet_places: [0, 50]}\n",
            "policy.yaml:4: share[0].bands.pallet_places: bands.pallet_places has no effect "
            "because amounts is not in fields; add amounts to fields or remove the band",
            id="band-amount-unlisted",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [free_hours, free_intervals]\n"
            "    bands: {free_hours: [0, 8]}\n",
            "policy.yaml:4: share[0].bands.free_hours: free_hours is shown as a band, but "
            "free_intervals is shared and its exact hours can be summed; remove free_intervals "
            "or the band",
            id="band-with-intervals",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    name: Frezarka\n    fields: [state]\n",
            "policy.yaml:3: share[0].name: name 'Frezarka' never leaves because 'name' is not in "
            "fields; add name to fields or remove the name",
            id="name-unlisted",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: []\n",
            "policy.yaml:3: share[0].fields: rule 1 lists no fields, but its offers still leave "
            "with the envelope (public id, kind, generated_at), which shows that the resources "
            "exist; list the fields to share, or remove the rule to publish nothing",
            id="no-fields",
        ),
        pytest.param(
            "share:\n"
            "  - resource: cnc-1\n    publish_as: laser-2\n    fields: [name]\n"
            "  - tag: hala-b\n    fields: [name]\n",
            "policy.yaml:5: share[1]: resources cnc-1, laser-2 would all be published as "
            "'laser-2' and overwrite each other's offer; give them different public ids",
            id="public-id-collision",
        ),
    ],
)
def test_lint_warning_names_line(text: str, expected: str) -> None:
    assert lint(text) == [expected]


def test_lint_sorted_by_line() -> None:
    text = (
        "share:\n"
        "  - resource: cnc-1\n"
        "    name: Frezarka\n"
        "    fields: [state]\n"
        "  - resource: press-9\n"
        "    fields: [name]\n"
    )

    problems = parse_policy(text, PATH).lint(RESOURCES, TAGS, 14, now=NOW, zone=WARSAW)

    assert [problem.line for problem in problems] == [3, 5]


def test_lint_warning_carries_code() -> None:
    text = "share:\n  - resource: cnc-1\n    fields: [free_hours]\n    horizon_days: 30\n"

    [warning] = parse_policy(text, PATH).lint(RESOURCES, TAGS, 14, now=NOW, zone=WARSAW)

    assert isinstance(warning, PolicyWarning)
    assert warning.code == "horizon"
    assert warning.values == {"days": "30", "agent_days": "14", "number": "1"}
    assert warning.reason == ENGLISH_TEMPLATES["horizon"].format(**warning.values)


def test_lint_rule_without_source() -> None:
    problems = Policy({"press-9": {"name"}}).lint(RESOURCES, TAGS, 14, now=NOW, zone=WARSAW)

    assert [problem.key for problem in problems] == ["share[0]"]
    assert problems[0].line is None


def test_lint_defaults_to_current_time() -> None:
    text = "share:\n  - resource: cnc-1\n    fields: [name]\n    expires: 2000-01-01\n"

    problems = parse_policy(text, PATH).lint(RESOURCES, TAGS, 14)

    assert [problem.key for problem in problems] == ["share[0].expires"]
