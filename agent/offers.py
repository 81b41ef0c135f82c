"""Offers built from the adapters' observations and the ``resources`` section of the config.

One ``Offer`` per resource. A resource is a machine when the config declares ``kind: machine``,
or, without a declared kind, when an adapter reports a ``MachineStatus`` or ``ScheduledWork`` for
it. Machines get state, state_since, horizon, free_hours and free_intervals; ``ResourceAmounts``
give amounts. A ``SupplyStock`` makes a ``supplies`` offer with amounts, price, suppliers and
customers. Names and capabilities come from the config first, then from the observations.
The policy is applied later, by the caller. The config's resource tags are for the policy only and
never go into an offer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from adapters.base import MachineStatus, Observation, ResourceAmounts, ScheduledWork, SupplyStock
from agent.availability import machine_availability
from agent.calendar import WorkingCalendar
from agent.config import AgentConfig, ResourceSettings
from kooperant.intervals import Interval
from kooperant.protocol import Amount, Offer, Price, ResourceKind, TopicError, check_identifier

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Observed:
    status: MachineStatus | None = None
    orders: list[Interval] = field(default_factory=list)
    scheduled: bool = False
    amounts: list[Amount] = field(default_factory=list)
    amounts_kind: ResourceKind | None = None
    name: str | None = None
    price: Price | None = None
    suppliers: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()


class OfferBuilder:
    """Builds offers for one member; logs each invalid resource id and withheld kind once."""

    def __init__(self, config: AgentConfig, calendar: WorkingCalendar | None = None) -> None:
        self._config = config
        self._calendar = calendar or config.working_calendar()
        self._rejected_ids: set[str] = set()
        self._withheld_logged: dict[ResourceKind, str] = {}

    def build(
        self,
        observations: Iterable[Observation],
        now: datetime,
        withheld: Mapping[ResourceKind, str] | None = None,
    ) -> list[Offer]:
        """Return one offer per resource, sorted by id, leaving out the ``withheld`` kinds."""
        observed = self._group(observations)
        declared = self._config.resources
        offers = []
        for resource in sorted(set(observed) | set(declared)):
            offer = self._offer(resource, observed.get(resource, _Observed()), declared, now)
            offers.append(offer)
        return self._withhold(offers, withheld or {})

    def _group(self, observations: Iterable[Observation]) -> dict[str, _Observed]:
        grouped: dict[str, _Observed] = {}
        for observation in observations:
            if not self._valid_id(observation.resource):
                continue
            entry = grouped.setdefault(observation.resource, _Observed())
            if isinstance(observation, MachineStatus):
                entry.status = observation
                entry.name = entry.name or observation.name
            elif isinstance(observation, ScheduledWork):
                entry.scheduled = True
                entry.orders.extend(order.interval for order in observation.orders)
            elif isinstance(observation, ResourceAmounts):
                entry.amounts.extend(observation.amounts)
                entry.amounts_kind = entry.amounts_kind or observation.kind
                entry.name = entry.name or observation.name
            elif isinstance(observation, SupplyStock):
                entry.amounts.extend(observation.amounts)
                entry.amounts_kind = entry.amounts_kind or ResourceKind.SUPPLIES
                entry.name = entry.name or observation.name
                entry.price = entry.price or observation.price
                entry.suppliers += observation.suppliers
                entry.customers += observation.customers
        return grouped

    def _offer(
        self,
        resource: str,
        observed: _Observed,
        declared: Mapping[str, ResourceSettings],
        now: datetime,
    ) -> Offer:
        description = declared.get(resource, ResourceSettings())
        kind = description.kind or _observed_kind(observed)
        offer = Offer(
            cluster=self._config.cluster,
            member=self._config.member,
            resource=resource,
            kind=kind,
            generated_at=now,
            name=description.name or observed.name,
            capabilities=description.capabilities or None,
            amounts=tuple(observed.amounts) if observed.amounts else None,
        )
        if kind is ResourceKind.SUPPLIES:
            return dataclasses.replace(
                offer,
                price=observed.price,
                suppliers=_unique(observed.suppliers),
                customers=_unique(observed.customers),
            )
        if kind is not ResourceKind.MACHINE:
            return offer

        availability = machine_availability(
            self._calendar,
            now,
            self._config.horizon_days,
            orders=observed.orders,
            status=observed.status,
        )
        status = observed.status
        return dataclasses.replace(
            offer,
            state=status.state if status else None,
            state_since=status.since if status else None,
            horizon=availability.horizon,
            free_hours=availability.free_hours,
            free_intervals=availability.free_intervals,
        )

    def _valid_id(self, resource: str) -> bool:
        try:
            check_identifier(resource, "resource")
        except TopicError as error:
            if resource not in self._rejected_ids:
                self._rejected_ids.add(resource)
                logger.warning("Ignoring observations of an adapter: %s", error)
            return False
        return True

    def _withhold(self, offers: list[Offer], withheld: Mapping[ResourceKind, str]) -> list[Offer]:
        for kind, reason in withheld.items():
            if self._withheld_logged.get(kind) != reason:
                logger.warning("Withholding %s offers: %s", kind, reason)
                self._withheld_logged[kind] = reason
        for kind in list(self._withheld_logged):
            if kind not in withheld:
                logger.info("Publishing %s offers again", kind)
                del self._withheld_logged[kind]
        return [offer for offer in offers if offer.kind not in withheld]


def _observed_kind(observed: _Observed) -> ResourceKind:
    if observed.status is not None or observed.scheduled:
        return ResourceKind.MACHINE
    if observed.amounts_kind is not None:
        return observed.amounts_kind
    # NOTE: a resource declared in the config without a kind and not observed by any adapter is
    # offered as a machine, because machines are what a declaration usually describes.
    return ResourceKind.MACHINE


def _unique(names: tuple[str, ...]) -> tuple[str, ...] | None:
    # Two stock records of one supply may name the same partner; the offer lists it once.
    return tuple(dict.fromkeys(names)) or None
