"""``kooperant agent check``: lint the policy against the resources the agent would offer.

``check_policy`` finds the agent's resources in one of two ways. Online (the default) it starts
the config's adapters like ``preview_offers``, collects once they have data or the wait ends, and
stops them. The resources are then those of the built offers plus those declared in the config.
Offline it starts nothing and uses only the resources declared in the config, each with its
declared kind (``machine`` when none is declared, as the offer builder assumes). Neither way
connects to the broker.

A kind an adapter withholds online (the schedule adapter withholds machines until it has read the
production plan) would publish no offer at all, so the result is not clean while one is withheld.
Nor is it clean while a source reports an error (an export that cannot be read names its file and
line) or stale data, because that source's offers would be missing or out of date.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.base import ConnectionState
from adapters.exports.progress import ReadProgressCallback
from agent.config import AgentConfig
from agent.errors import Problem
from agent.preview import DEFAULT_WAIT_SECONDS
from agent.resource_sources import ResourceConflict
from agent.runner import Agent
from kooperant.protocol import ResourceKind


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A source of an adapter that failed with ``detail`` or whose data is stale."""

    adapter: str
    source: str
    detail: str | None
    stale: bool
    detail_code: str | None = None
    detail_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The resources the policy was checked against and the warnings found."""

    resources: Mapping[str, ResourceKind]
    warnings: tuple[Problem, ...]
    withheld_kinds: Mapping[ResourceKind, str]
    """Kinds the adapters withheld; their resources are known only if the config declares them."""
    ready: bool
    """Whether every adapter had data before the wait ended; true offline and without adapters."""
    source_problems: tuple[SourceProblem, ...] = ()
    conflicts: tuple[ResourceConflict, ...] = ()
    """Resource ids that several adapters report in ways that do not add up."""

    @property
    def clean(self) -> bool:
        """Whether the check found no warning, withheld kind, source problem or conflict."""
        problems = self.warnings or self.withheld_kinds or self.source_problems or self.conflicts
        return not problems


def declared_resources(config: AgentConfig) -> dict[str, ResourceKind]:
    """Return the resources of the config's ``resources`` section with their kinds."""
    return {
        resource: settings.kind or ResourceKind.MACHINE
        for resource, settings in config.resources.items()
    }


async def check_policy(
    config: AgentConfig,
    *,
    offline: bool = False,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    clock: Callable[[], datetime] | None = None,
    read_progress: ReadProgressCallback | None = None,
) -> CheckResult:
    """Return the policy's lint warnings for the resources the agent has now.

    ``read_progress`` receives the progress of export reads, as in ``Agent``.
    """
    resources = declared_resources(config)
    withheld: Mapping[ResourceKind, str] = {}
    problems: tuple[SourceProblem, ...] = ()
    conflicts: tuple[ResourceConflict, ...] = ()
    ready = True
    if not offline:
        agent = Agent(config, clock=clock, read_progress=read_progress)
        await agent.start_adapters()
        try:
            snapshot = await agent.collect_when_ready(wait_seconds)
            problems = source_problems(agent)
        finally:
            await agent.stop_adapters()
        resources.update((offer.resource, offer.kind) for offer in snapshot.offers)
        withheld = dict(snapshot.withheld_kinds)
        conflicts = snapshot.conflicts
        ready = snapshot.ready or not config.adapters

    tags = {resource: frozenset(settings.tags) for resource, settings in config.resources.items()}
    now = (clock or _utc_now)()
    warnings = config.sharing_policy.lint(
        resources, tags, config.horizon_days, now=now, zone=config.zone
    )
    return CheckResult(
        dict(sorted(resources.items())), tuple(warnings), withheld, ready, problems, conflicts
    )


def source_problems(agent: Agent) -> tuple[SourceProblem, ...]:
    """Return the sources that are disconnected with an error, or whose data is stale.

    A source still connecting without an error (an OPC UA server slow to respond) is not a problem.
    """
    problems = []
    for adapter in agent.status().adapters:
        for source in adapter.sources:
            failed = source.state is ConnectionState.DISCONNECTED and source.detail is not None
            if failed or source.stale:
                problem = SourceProblem(
                    adapter.name,
                    source.source,
                    source.detail,
                    source.stale,
                    source.detail_code,
                    source.detail_values,
                )
                problems.append(problem)
    return tuple(problems)


def _utc_now() -> datetime:
    return datetime.now(UTC)
