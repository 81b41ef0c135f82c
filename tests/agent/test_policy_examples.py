"""The worked examples of the policy guide, run through the policy engine.

Each example of ``docs/policy.md`` has its code blocks after marker comments such as
``<!-- example: half-day-partners payload -->``: the policy file, the offer before the policy and
the payload after it, and for example (e) the withdrawal sent when the share expires. The tests
read those blocks, so the guide cannot drift from what the engine publishes. The Polish guide must
show the same policies, offers and payloads.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from agent.config import AgentConfig, load_config
from agent.policy import Policy, PolicyContext, WithheldReason, load_policy
from kooperant.protocol import (
    Offer,
    ResourceKind,
    WithdrawalReason,
    parse_offer,
    parse_withdrawal,
)
from tests.conftest import REPO_ROOT

GUIDE = REPO_ROOT / "docs" / "policy.md"
POLISH_GUIDE = REPO_ROOT / "docs" / "policy.pl.md"
POLICIES = REPO_ROOT / "config" / "policies"
POLICY_SCHEMA = REPO_ROOT / "config" / "policy.schema.json"

EXAMPLES = (
    "half-day-partners",
    "warehouse-bands",
    "it-team-cluster",
    "surplus-stock",
    "temporary-share",
)
# Fields of each internal offer that the example's rule leaves out, as the guide describes them.
REMOVED = {
    "half-day-partners": ("state_since",),
    "warehouse-bands": (),
    "it-team-cluster": (),
    "surplus-stock": ("price", "suppliers", "customers"),
    "temporary-share": ("state", "state_since", "free_intervals"),
}
# Monday, 7 December 2026, 09:20 in Warsaw: the clock of every example in the guide.
NOW = datetime(2026, 12, 7, 8, 20, tzinfo=UTC)
# The end of 31 December 2026 in Warsaw, where example (e) expires.
TEMPORARY_SHARE_END = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)

Blocks = dict[tuple[str, str], str]
"""Code blocks of a guide by (example, part), part being policy, offer, payload or withdrawal."""

_MARKER = re.compile(r"<!-- example: (?P<name>[a-z-]+) (?P<part>[a-z]+) -->\n```(?:json|yaml)\n")


def marked_blocks(path: Path) -> Blocks:
    """Return the code block after each example marker of ``path``, keyed by (name, part)."""
    text = path.read_text(encoding="utf-8")
    blocks = {}
    for match in _MARKER.finditer(text):
        end = text.index("\n```\n", match.end())
        key = (match["name"], match["part"])
        assert key not in blocks, f"{path.name}: second block marked {key}"
        blocks[key] = text[match.end() : end + 1]
    return blocks


@pytest.fixture(scope="module")
def guide() -> Blocks:
    return marked_blocks(GUIDE)


@pytest.fixture(scope="module")
def polish_guide() -> Blocks:
    return marked_blocks(POLISH_GUIDE)


@pytest.fixture(scope="module")
def config() -> AgentConfig:
    return load_config(POLICIES / "agent.yaml", variables={})


def policy_context(config: AgentConfig, now: datetime) -> PolicyContext:
    return PolicyContext(
        now=now, calendar=config.working_calendar(), zone=config.zone, tags=declared_tags(config)
    )


def declared_tags(config: AgentConfig) -> dict[str, frozenset[str]]:
    return {resource: frozenset(settings.tags) for resource, settings in config.resources.items()}


def internal_offer(guide: Blocks, example: str) -> Offer:
    return parse_offer(guide[example, "offer"].encode())


def example_policy(example: str) -> Policy:
    return load_policy(POLICIES / f"{example}.yaml", variables={})


def published_json(config: AgentConfig, guide: Blocks, example: str) -> dict[str, Any]:
    decision = example_policy(example).decide(
        internal_offer(guide, example), policy_context(config, NOW)
    )
    assert decision.offer is not None, decision.reason
    return decision.offer.to_json()


def declared_kinds(config: AgentConfig) -> dict[str, ResourceKind]:
    kinds = {}
    for resource, settings in config.resources.items():
        assert settings.kind is not None, f"agent.yaml: resource {resource} declares no kind"
        kinds[resource] = settings.kind
    return kinds


class _StringDates(yaml.SafeLoader):
    """A YAML loader that keeps dates as text, as YAML 1.2 editors and JSON Schema see them."""


_StringDates.yaml_implicit_resolvers = {
    first: [entry for entry in resolvers if entry[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def test_guide_marks_every_example_block(guide: Blocks, polish_guide: Blocks) -> None:
    expected = {(name, part) for name in EXAMPLES for part in ("policy", "offer", "payload")}
    expected.add(("temporary-share", "withdrawal"))

    assert set(guide) == expected
    assert set(polish_guide) == expected


def test_policy_folder_contains_only_examples() -> None:
    found = {path.stem for path in POLICIES.glob("*.yaml")}

    assert found == {*EXAMPLES, "agent"}


@pytest.mark.parametrize("example", EXAMPLES)
def test_guide_policy_equals_file(example: str, guide: Blocks) -> None:
    text = (POLICIES / f"{example}.yaml").read_text(encoding="utf-8")

    assert guide[example, "policy"] == text


@pytest.mark.parametrize("example", EXAMPLES)
def test_polish_guide_policy_same_data(example: str, polish_guide: Blocks) -> None:
    text = (POLICIES / f"{example}.yaml").read_text(encoding="utf-8")

    assert yaml.safe_load(polish_guide[example, "policy"]) == yaml.safe_load(text)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_policy_starts_with_schema_line(example: str) -> None:
    first_line = (POLICIES / f"{example}.yaml").read_text(encoding="utf-8").splitlines()[0]

    assert first_line == "# yaml-language-server: $schema=../policy.schema.json"


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_policy_valid_for_schema(example: str) -> None:
    schema = json.loads(POLICY_SCHEMA.read_text(encoding="utf-8"))
    text = (POLICIES / f"{example}.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_StringDates)

    errors = [error.message for error in Draft202012Validator(schema).iter_errors(data)]

    assert errors == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_payload_equals_guide(example: str, config: AgentConfig, guide: Blocks) -> None:
    expected = json.loads(guide[example, "payload"])

    assert published_json(config, guide, example) == expected


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_removed_fields(example: str, config: AgentConfig, guide: Blocks) -> None:
    decision = example_policy(example).decide(
        internal_offer(guide, example), policy_context(config, NOW)
    )

    assert decision.removed == REMOVED[example]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_payload_accepted_by_aggregator(
    example: str, config: AgentConfig, guide: Blocks
) -> None:
    payload = json.dumps(published_json(config, guide, example)).encode()

    parsed = parse_offer(payload)

    assert parsed.to_json() == json.loads(payload)


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("part", ["offer", "payload"])
def test_polish_guide_same_json(
    example: str,
    part: str,
    guide: Blocks,
    polish_guide: Blocks,
) -> None:
    assert json.loads(polish_guide[example, part]) == json.loads(guide[example, part])


def test_polish_guide_same_withdrawal(guide: Blocks, polish_guide: Blocks) -> None:
    key = ("temporary-share", "withdrawal")

    assert json.loads(polish_guide[key]) == json.loads(guide[key])


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_lint_reports_nothing(example: str, config: AgentConfig) -> None:
    policy = example_policy(example)

    problems = policy.lint(
        declared_kinds(config),
        declared_tags(config),
        config.horizon_days,
        now=NOW,
        zone=config.zone,
    )

    assert problems == []


def test_agent_config_names_an_example(config: AgentConfig) -> None:
    assert config.policy_path.stem in EXAMPLES


def test_temporary_share_until_last_minute(config: AgentConfig, guide: Blocks) -> None:
    offer = internal_offer(guide, "temporary-share")
    last_minute = datetime(2026, 12, 31, 22, 59, tzinfo=UTC)

    decision = example_policy("temporary-share").decide(offer, policy_context(config, last_minute))

    assert decision.shared


def test_temporary_share_withheld_after_expiry(config: AgentConfig, guide: Blocks) -> None:
    offer = internal_offer(guide, "temporary-share")

    decision = example_policy("temporary-share").decide(
        offer, policy_context(config, TEMPORARY_SHARE_END)
    )

    assert decision.offer is None
    assert decision.withheld is WithheldReason.EXPIRED
    assert decision.public_resource == "laser-02"


def test_withdrawal_example_matches_expiry(config: AgentConfig, guide: Blocks) -> None:
    withdrawal = parse_withdrawal(guide["temporary-share", "withdrawal"].encode())
    decision = example_policy("temporary-share").decide(
        internal_offer(guide, "temporary-share"), policy_context(config, TEMPORARY_SHARE_END)
    )

    assert withdrawal.resource == decision.public_resource
    assert withdrawal.reason is WithdrawalReason.EXPIRED
    assert withdrawal.withdrawn_at == TEMPORARY_SHARE_END
    assert withdrawal.delete_history is False
