"""``kooperant agent check``: lint the policy against the resources the agent would offer.

``check_policy`` finds the agent's resources in one of two ways. Online (the default) it starts
the config's adapters like ``preview_offers``, collects once they have data or the wait ends, and
stops them. The resources are then those of the built offers plus those declared in the config.
Offline it starts nothing and uses only the resources declared in the config, each with its
declared kind (``machine`` when none is declared, as the offer builder assumes). Neither way
connects to the broker.

A kind an adapter withholds online (the schedule adapter withholds machines until it has read the
production plan) would publish no offer at all, so the result is not clean while one is withheld.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.config import AgentConfig
from agent.errors import Problem
from agent.preview import DEFAULT_WAIT_SECONDS
from agent.runner import Agent
from kooperant.protocol import ResourceKind


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The resources the policy was checked against and the warnings found."""

    resources: Mapping[str, ResourceKind]
    warnings: tuple[Problem, ...]
    withheld_kinds: Mapping[ResourceKind, str]
    """Kinds the adapters withheld; their resources are known only if the config declares them."""
    ready: bool
    """Whether every adapter had data before the wait ended; true offline and without adapters."""

    @property
    def clean(self) -> bool:
        """Whether the check found nothing to report: no lint warning and no withheld kind."""
        return not self.warnings and not self.withheld_kinds


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
) -> CheckResult:
    """Return the policy's lint warnings for the resources the agent has now."""
    resources = declared_resources(config)
    withheld: Mapping[ResourceKind, str] = {}
    ready = True
    if not offline:
        agent = Agent(config, clock=clock)
        await agent.start_adapters()
        try:
            snapshot = await agent.collect_when_ready(wait_seconds)
        finally:
            await agent.stop_adapters()
        resources.update((offer.resource, offer.kind) for offer in snapshot.offers)
        withheld = dict(snapshot.withheld_kinds)
        ready = snapshot.ready or not config.adapters

    tags = {resource: frozenset(settings.tags) for resource, settings in config.resources.items()}
    now = (clock or _utc_now)()
    warnings = config.sharing_policy.lint(
        resources, tags, config.horizon_days, now=now, zone=config.zone
    )
    return CheckResult(dict(sorted(resources.items())), tuple(warnings), withheld, ready)


def _utc_now() -> datetime:
    return datetime.now(UTC)
