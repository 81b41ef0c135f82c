"""Reading the policy file into a ``Policy``, with file and line in every error.

``PolicyFileModel`` checks each key on its own. This module then checks what spans several keys:
a rule needs a selector, ``publish_as`` needs exactly one resource id, two resources must not
share a public id, and audience groups must be defined under ``groups``. Every problem found is
reported at once, sorted by line, and worded in the current language.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from agent.errors import ConfigError, Problem
from agent.policy.decide import Policy
from agent.policy.model import PolicyFileModel, RuleModel
from agent.policy.rules import Rule, expand_fields
from agent.validation_messages import MESSAGES
from agent.yamlfile import Location, YamlDocument


def load_policy(path: Path, variables: Mapping[str, str] | None = None) -> Policy:
    """Read the policy file at ``path``; raise ``ConfigError`` naming file, line and key."""
    return _build(YamlDocument.load(path, variables))


def parse_policy(text: str, path: Path, variables: Mapping[str, str] | None = None) -> Policy:
    """Parse policy ``text`` read from ``path``; raise ``ConfigError`` naming file, line and key.

    The agent reads the file once and parses those exact bytes, so that a file changed between
    a check and the parse is never applied half-written.
    """
    return _build(YamlDocument.parse(text, path, variables))


def _build(document: YamlDocument) -> Policy:
    data = {} if document.data is None else document.data
    if not isinstance(data, dict):
        raise document.error((), MESSAGES("policy.not_mapping"))
    try:
        parsed = PolicyFileModel.model_validate(data)
    except ValidationError as error:
        problems = document.validation_problems(error)
        problems.sort(key=lambda problem: problem.line or 0)
        raise ConfigError(document.path, problems) from error

    problems = _cross_key_problems(document, parsed)
    if problems:
        problems.sort(key=lambda problem: problem.line or 0)
        raise ConfigError(document.path, problems)

    groups = {name: frozenset(members) for name, members in parsed.groups.items()}
    rules = [_rule(document, index, entry, groups) for index, entry in enumerate(parsed.share)]
    return Policy(rules, groups=groups, source=document.path, secret_files=document.secret_files)


def _cross_key_problems(document: YamlDocument, parsed: PolicyFileModel) -> list[Problem]:
    problems: list[Problem] = []
    # Public id -> (internal id, rule index) of the first rule that publishes under it.
    public_ids: dict[str, tuple[str, int]] = {}
    for index, entry in enumerate(parsed.share):
        where: Location = ("share", index)
        if not (entry.resource or entry.kind or entry.tag):
            reason = MESSAGES("policy.no_selector")
            problems.append(document.problem(where, reason))

        if entry.publish_as is not None and len(entry.resource) != 1:
            reason = MESSAGES(
                "policy.publish_as_one_id", public_id=entry.publish_as, count=len(entry.resource)
            )
            problems.append(document.problem((*where, "publish_as"), reason))

        renames_several = entry.publish_as is not None and len(entry.resource) != 1
        for resource in () if renames_several else entry.resource:
            public = entry.publish_as or resource
            first = public_ids.setdefault(public, (resource, index))
            if first[0] != resource:
                key = "publish_as" if entry.publish_as else "resource"
                reason = MESSAGES(
                    "policy.public_id_used",
                    public_id=public,
                    resource=first[0],
                    rule=first[1] + 1,
                    line=document.line_of(("share", first[1])),
                )
                problems.append(document.problem((*where, key), reason))

        if entry.audience is not None:
            for position, group in enumerate(entry.audience.groups):
                if group not in parsed.groups:
                    defined = ", ".join(sorted(parsed.groups)) or MESSAGES("policy.groups_none")
                    reason = MESSAGES("policy.group_unknown", group=group, defined=defined)
                    problems.append(
                        document.problem((*where, "audience", "groups", position), reason)
                    )
    return problems


def _rule(
    document: YamlDocument, index: int, entry: RuleModel, groups: Mapping[str, frozenset[str]]
) -> Rule:
    audience = None
    if entry.audience is not None:
        members = set(entry.audience.members)
        for group in entry.audience.groups:
            members.update(groups[group])
        audience = tuple(sorted(members))

    return Rule(
        index + 1,
        expand_fields(entry.fields),
        resources=frozenset(entry.resource),
        kinds=frozenset(entry.kind),
        tags=frozenset(entry.tag),
        publish_as=entry.publish_as,
        name=entry.name,
        round=entry.round,
        bands={key: tuple(edges) for key, edges in entry.bands.items()},
        horizon_days=entry.horizon_days,
        delay_minutes=entry.delay_minutes,
        labels=None if entry.labels is None else dict(entry.labels),
        audience=audience,
        expires=entry.expires,
        accepts_requests=entry.requests,
        source=document.path,
        line=document.line_of(("share", index)),
        key_lines=_key_lines(document, index, entry),
    )


def _key_lines(document: YamlDocument, index: int, entry: RuleModel) -> dict[str, int]:
    lines = {}
    for key in entry.model_fields_set:
        line = document.line_of(("share", index, key))
        if line is not None:
            lines[key] = line
    return lines
