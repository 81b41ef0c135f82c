"""The generated cluster of the search benchmark, written straight into PostgreSQL with COPY.

One cluster of ``members`` members, each with ``offers`` current offers and a history of
``days`` days with ``history_per_day`` versions of each offer per day. The rows match what
``Storage.store_offer`` writes for the same offers: payloads are real ``kooperant.offer/1.2``
messages built with ``Offer.to_payload``, and the capabilities, free intervals, audience and
amounts tables hold what those payloads contain. History versions repeat the current payload
with their own ``generated_at``, ``seq`` and message id.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from kooperant.intervals import Interval
from kooperant.protocol import (
    Amount,
    Band,
    Envelope,
    MachineState,
    Offer,
    Price,
    ResourceKind,
)
from kooperant.protocol.offer import format_time
from server.storage.capacity import capacity_day

CLUSTER = "bench"
HORIZON = timedelta(days=14)
LOCAL_TIME = ZoneInfo("Europe/Warsaw")
# Two shifts on working days, in Europe/Warsaw time.
SHIFT_START = time(6, 0)
SHIFT_END = time(22, 0)

# About 40 capability tags, by the kind of resource that carries them.
CAPABILITIES: dict[ResourceKind, tuple[str, ...]] = {
    ResourceKind.MACHINE: (
        "5-axis-milling",
        "cnc-milling",
        "cnc-turning",
        "laser-cutting",
        "plasma-cutting",
        "waterjet-cutting",
        "sheet-metal",
        "press-braking",
        "mig-welding",
        "tig-welding",
        "robotic-welding",
        "powder-coating",
        "grinding",
        "edm",
        "injection-moulding",
        "metal-3d-printing",
        "polymer-3d-printing",
        "cmm-measurement",
        "heat-treatment",
        "galvanizing",
    ),
    ResourceKind.STORAGE: (
        "cold-storage",
        "frozen-storage",
        "high-bay-racking",
        "hazardous-materials",
        "bulk-storage",
        "bonded-warehouse",
    ),
    ResourceKind.IT_CAPACITY: ("linux-vm", "gpu", "kubernetes", "backup-storage"),
    ResourceKind.IT_TEAM: (
        "python",
        "plc-programming",
        "sap-abap",
        "erp-integration",
        "network-administration",
        "cad-modelling",
    ),
    ResourceKind.SUPPLIES: (
        "steel-sheet",
        "stainless-steel",
        "aluminium-profiles",
        "plastic-granulate",
        "wood-pallets",
        "packaging-cardboard",
    ),
}
# Share of each kind among the offers, in percent; an assumption, with machines as half.
KIND_WEIGHTS = {
    ResourceKind.MACHINE: 50,
    ResourceKind.STORAGE: 15,
    ResourceKind.IT_CAPACITY: 10,
    ResourceKind.IT_TEAM: 10,
    ResourceKind.SUPPLIES: 15,
}
MACHINE_NAMES = (
    "Centrum frezarskie DMU 50",
    "Tokarka CNC Haas ST-20",
    "Wycinarka laserowa TruLaser 3030",
    "Prasa krawędziowa AMADA HG 1303",
    "Robot spawalniczy Fanuc ARC Mate",
    "Wtryskarka Engel victory 200",
    "Drukarka 3D EOS M 290",
    "Maszyna współrzędnościowa Zeiss Contura",
)
# The codes of the 16 voivodeships in server/regions.py, with a few cities of each.
REGIONS: dict[str, tuple[str, ...]] = {
    "dolnoslaskie": ("Wrocław", "Legnica", "Wałbrzych"),
    "kujawsko-pomorskie": ("Bydgoszcz", "Toruń", "Włocławek"),
    "lubelskie": ("Lublin", "Zamość", "Puławy"),
    "lubuskie": ("Gorzów Wielkopolski", "Zielona Góra"),
    "lodzkie": ("Łódź", "Piotrków Trybunalski", "Bełchatów"),
    "malopolskie": ("Kraków", "Tarnów", "Nowy Sącz"),
    "mazowieckie": ("Warszawa", "Radom", "Płock"),
    "opolskie": ("Opole", "Kędzierzyn-Koźle"),
    "podkarpackie": ("Rzeszów", "Mielec", "Stalowa Wola"),
    "podlaskie": ("Białystok", "Suwałki"),
    "pomorskie": ("Gdańsk", "Gdynia", "Słupsk"),
    "slaskie": ("Katowice", "Gliwice", "Bielsko-Biała"),
    "swietokrzyskie": ("Kielce", "Ostrowiec Świętokrzyski"),
    "warminsko-mazurskie": ("Olsztyn", "Elbląg"),
    "wielkopolskie": ("Poznań", "Kalisz", "Piła"),
    "zachodniopomorskie": ("Szczecin", "Koszalin"),
}
# Share of offers with an audience, and the shares that expire later or expired already.
AUDIENCE_SHARE = 0.10
EXPIRING_SHARE = 0.20
EXPIRED_SHARE = 0.05
OFFLINE_SHARE = 0.20
BANDED_SHARE = 0.10
BENCH_TABLES = (
    "members",
    "member_status",
    "registered_members",
    "member_profiles",
    "resources",
    "resource_capabilities",
    "free_intervals",
    "resource_audience",
    "resource_amounts",
    "offer_history",
    "capacity_days",
    "delivered_messages",
)


@dataclass(frozen=True, slots=True)
class DataSet:
    """The size of the generated cluster."""

    members: int
    offers: int
    days: int
    history_per_day: int
    seed: int = 7


def member_id(index: int) -> str:
    return f"m{index:05d}"


def load_cluster(connection: psycopg.Connection[Any], data: DataSet, now: datetime) -> None:
    """Write the generated cluster into the empty, migrated database of ``connection``."""
    generator = random.Random(data.seed)
    members = [member_id(index) for index in range(1, data.members + 1)]
    offers = [
        generated_offer(generator, members, member, position, now)
        for member in members
        for position in range(1, data.offers + 1)
    ]
    with connection.transaction():
        _copy(
            connection,
            "members",
            ("cluster", "member", "first_seen", "last_seen"),
            _member_rows(generator, members, data, now),
        )
        _copy(
            connection,
            "member_status",
            (
                "cluster",
                "member",
                "state",
                "connected_at",
                "reason",
                "status_received_at",
                "message_id",
            ),
            _status_rows(generator, members, now),
        )
        _copy(
            connection,
            "registered_members",
            ("cluster", "member", "registered_at"),
            ((CLUSTER, member, now - timedelta(days=data.days)) for member in members),
        )
        _copy(
            connection,
            "member_profiles",
            (
                "cluster",
                "member",
                "name",
                "contact_email",
                "contact_phone",
                "voivodeship",
                "city",
                "description",
                "updated_at",
            ),
            _profile_rows(generator, members, now),
        )
        _copy_offers(connection, offers, now)
        _copy(
            connection,
            "offer_history",
            (
                "cluster",
                "member",
                "resource",
                "generated_at",
                "received_at",
                "payload",
                "seq",
                "message_id",
            ),
            _history_rows(offers, data),
        )
        _copy(
            connection,
            "capacity_days",
            ("cluster", "member", "resource", "day", "generated_at", "free_hours"),
            _capacity_rows(offers, data),
        )


@dataclass(frozen=True, slots=True)
class GeneratedOffer:
    """One generated offer and its payload as stored in the ``offers`` table."""

    offer: Offer
    payload: str


def generated_offer(
    generator: random.Random, members: Sequence[str], member: str, position: int, now: datetime
) -> GeneratedOffer:
    """Draw the offer of resource ``r{position:03d}`` of ``member`` at ``now`` from ``generator``.

    Its kind, capabilities, audience among ``members`` and expiry follow the shares of this
    module, and the same ``generator`` state gives the same offer.
    """
    kinds = list(KIND_WEIGHTS)
    kind = generator.choices(kinds, weights=[KIND_WEIGHTS[item] for item in kinds])[0]
    tags = CAPABILITIES[kind]
    capabilities = tuple(sorted(generator.sample(tags, generator.randint(1, min(3, len(tags))))))
    fields: dict[str, Any] = {}
    if kind == ResourceKind.MACHINE:
        fields = _machine_fields(generator, now)
    else:
        fields = _amount_fields(generator, kind)

    audience = None
    if generator.random() < AUDIENCE_SHARE:
        others = [
            item for item in generator.sample(members, min(4, len(members))) if item != member
        ]
        audience = tuple(sorted(others[: generator.randint(1, 3)])) or None
    expires_at = None
    draw = generator.random()
    if draw < EXPIRED_SHARE:
        expires_at = now - timedelta(hours=generator.randint(1, 48))
    elif draw < EXPIRED_SHARE + EXPIRING_SHARE:
        expires_at = now + timedelta(days=generator.randint(1, 30))

    resource = f"r{position:03d}"
    generated_at = now - timedelta(minutes=generator.randint(1, 60))
    offer = Offer(
        cluster=CLUSTER,
        member=member,
        resource=resource,
        kind=kind,
        generated_at=generated_at,
        capabilities=capabilities,
        audience=audience,
        expires_at=expires_at,
        envelope=Envelope(f"{member}-{resource}-current", _sequence(generated_at)),
        **fields,
    )
    return GeneratedOffer(offer, offer.to_payload().decode("utf-8"))


def _machine_fields(generator: random.Random, now: datetime) -> dict[str, Any]:
    horizon = Interval(now, now + HORIZON)
    free = _free_intervals(generator, horizon)
    hours = sum((item.end - item.start).total_seconds() for item in free) / 3600
    fields: dict[str, Any] = {
        "name": f"{generator.choice(MACHINE_NAMES)} #{generator.randint(1, 9)}",
        "state": generator.choice(
            [
                MachineState.EXECUTING,
                MachineState.EXECUTING,
                MachineState.NOT_EXECUTING,
                MachineState.OUT_OF_SERVICE,
            ]
        ),
        "state_since": now - timedelta(minutes=generator.randint(5, 600)),
        "horizon": horizon,
        "free_intervals": tuple(free),
    }
    if generator.random() < BANDED_SHARE:
        low = int(hours // 20) * 20
        fields["free_hours_band"] = Band(low, low + 20)
    else:
        fields["free_hours"] = round(hours, 2)
    return fields


def _free_intervals(generator: random.Random, horizon: Interval) -> list[Interval]:
    """Return the free parts of the shifts of each working day, after random booked orders."""
    free: list[Interval] = []
    day = horizon.start.astimezone(LOCAL_TIME).date()
    while True:
        start = datetime.combine(day, SHIFT_START, LOCAL_TIME).astimezone(UTC)
        if start >= horizon.end:
            break
        end = datetime.combine(day, SHIFT_END, LOCAL_TIME).astimezone(UTC)
        day += timedelta(days=1)
        if start.astimezone(LOCAL_TIME).weekday() >= 5 or generator.random() < 0.3:
            continue
        # One order books the middle of the shifts: the hours before and after it stay free.
        booked_from = start + timedelta(hours=generator.randint(0, 8))
        booked_to = booked_from + timedelta(hours=generator.randint(0, 8))
        for piece in (Interval(start, booked_from), Interval(booked_to, end)):
            clipped_start = max(piece.start, horizon.start)
            clipped_end = min(piece.end, horizon.end)
            if clipped_end > clipped_start:
                free.append(Interval(clipped_start, clipped_end))
    return free


def _amount_fields(generator: random.Random, kind: ResourceKind) -> dict[str, Any]:
    if kind == ResourceKind.STORAGE:
        places = float(generator.randint(10, 2000))
        amount = Amount("pallet_places", places, "pallet places", label="Hala B")
        if generator.random() < BANDED_SHARE:
            low = places // 100 * 100
            amount = Amount("pallet_places", None, "pallet places", band=Band(low, low + 100))
        return {"name": "Magazyn wysokiego składowania", "amounts": (amount,)}
    if kind == ResourceKind.IT_CAPACITY:
        amounts = (
            Amount("cpu_free", float(generator.randint(2, 64)), "cores"),
            Amount("memory_free", round(generator.uniform(4, 512), 1), "GiB"),
            Amount("disk_free", round(generator.uniform(50, 20000), 1), "GiB", label="/"),
        )
        return {"name": "Serwerownia", "amounts": amounts}
    if kind == ResourceKind.IT_TEAM:
        days = float(generator.randint(1, 60))
        return {"name": "Zespół IT", "amounts": (Amount("person_days", days, "person-days"),)}
    stock = float(generator.randint(1, 5000))
    return {
        "name": "Nadwyżka materiału",
        "amounts": (Amount("stock", stock, "kg"),),
        "price": Price(round(generator.uniform(1, 80), 2), "PLN", "kg"),
    }


def _sequence(generated_at: datetime) -> int:
    return int(generated_at.timestamp() * 1000)


def _member_rows(
    generator: random.Random, members: Sequence[str], data: DataSet, now: datetime
) -> Iterator[tuple[Any, ...]]:
    for member in members:
        yield (
            CLUSTER,
            member,
            now - timedelta(days=data.days),
            now - timedelta(seconds=generator.randint(1, 3600)),
        )


def _status_rows(
    generator: random.Random, members: Sequence[str], now: datetime
) -> Iterator[tuple[Any, ...]]:
    for member in members:
        connected_at = now - timedelta(hours=generator.randint(1, 500))
        offline = generator.random() < OFFLINE_SHARE
        state, reason = ("offline", "connection_lost") if offline else ("online", None)
        received = now - timedelta(minutes=generator.randint(1, 600)) if offline else connected_at
        yield CLUSTER, member, state, connected_at, reason, received, f"{member}-status"


def _profile_rows(
    generator: random.Random, members: Sequence[str], now: datetime
) -> Iterator[tuple[Any, ...]]:
    for member in members:
        voivodeship = generator.choice(list(REGIONS))
        city = generator.choice(REGIONS[voivodeship])
        yield (
            CLUSTER,
            member,
            f"Zakład Produkcyjny {member.upper()} sp. z o.o.",
            f"biuro@{member}.example.pl",
            f"+48 58 {generator.randint(100, 999)} {generator.randint(10, 99)} 00",
            voivodeship,
            city,
            "Obróbka skrawaniem, spawanie i magazynowanie na zlecenie.",
            now - timedelta(days=generator.randint(1, 90)),
        )


def _copy_offers(
    connection: psycopg.Connection[Any], offers: Sequence[GeneratedOffer], now: datetime
) -> None:
    _copy(
        connection,
        "resources",
        (
            "cluster",
            "member",
            "resource",
            "kind",
            "name",
            "state",
            "state_since",
            "free_hours",
            "horizon_start",
            "horizon_end",
            "generated_at",
            "received_at",
            "payload",
            "free_hours_min",
            "free_hours_max",
            "expires_at",
            "seq",
            "message_id",
            "restricted",
        ),
        (_resource_row(item, now) for item in offers),
    )
    _copy(
        connection,
        "resource_capabilities",
        ("cluster", "member", "resource", "capability"),
        (
            (*_key(item.offer), capability)
            for item in offers
            for capability in item.offer.capabilities or ()
        ),
    )
    _copy(
        connection,
        "free_intervals",
        ("cluster", "member", "resource", "start", "end"),
        (
            (*_key(item.offer), interval.start, interval.end)
            for item in offers
            for interval in item.offer.free_intervals or ()
        ),
    )
    _copy(
        connection,
        "resource_audience",
        ("cluster", "member", "resource", "viewer"),
        ((*_key(item.offer), viewer) for item in offers for viewer in item.offer.audience or ()),
    )
    _copy(
        connection,
        "resource_amounts",
        (
            "cluster",
            "member",
            "resource",
            "position",
            "quantity",
            "unit",
            "label",
            "value",
            "band_min",
            "band_max",
        ),
        _amount_rows(offers),
    )
    _copy(
        connection,
        "delivered_messages",
        ("cluster", "member", "message_id", "seq", "kind", "received_at"),
        (
            (CLUSTER, item.offer.member, _message_id(item.offer), _seq(item.offer), "offer", now)
            for item in offers
        ),
    )


def _resource_row(item: GeneratedOffer, now: datetime) -> tuple[Any, ...]:
    offer = item.offer
    band = offer.free_hours_band
    return (
        *_key(offer),
        str(offer.kind),
        offer.name,
        str(offer.state) if offer.state is not None else None,
        offer.state_since,
        offer.free_hours,
        offer.horizon.start if offer.horizon else None,
        offer.horizon.end if offer.horizon else None,
        offer.generated_at,
        now,
        item.payload,
        band.min if band is not None else None,
        band.max if band is not None else None,
        offer.expires_at,
        _seq(offer),
        _message_id(offer),
        bool(offer.audience),
    )


def _amount_rows(offers: Sequence[GeneratedOffer]) -> Iterator[tuple[Any, ...]]:
    for item in offers:
        for position, amount in enumerate(item.offer.amounts or ()):
            band = amount.band
            yield (
                *_key(item.offer),
                position,
                amount.quantity,
                amount.unit,
                amount.label,
                amount.value,
                band.min if band is not None else None,
                band.max if band is not None else None,
            )


def _history_rows(offers: Sequence[GeneratedOffer], data: DataSet) -> Iterator[tuple[Any, ...]]:
    """Yield ``history_per_day`` versions per offer and day, the newest being the current one."""
    step = timedelta(days=1) / data.history_per_day
    versions = data.days * data.history_per_day
    for item in offers:
        offer = item.offer
        current_time = format_time(offer.generated_at)
        for age in range(versions - 1, -1, -1):
            generated_at = offer.generated_at - age * step
            payload = item.payload.replace(current_time, format_time(generated_at), 1)
            message_id = f"{offer.member}-{offer.resource}-{age}" if age else _message_id(offer)
            yield (
                *_key(offer),
                generated_at,
                generated_at + timedelta(seconds=1),
                payload,
                _sequence(generated_at),
                message_id,
            )


def _capacity_rows(offers: Sequence[GeneratedOffer], data: DataSet) -> Iterator[tuple[Any, ...]]:
    """Yield the last version per offer and day of ``_history_rows``, as ingest keeps it."""
    step = timedelta(days=1) / data.history_per_day
    versions = data.days * data.history_per_day
    for item in offers:
        offer = item.offer
        if offer.free_hours is None:
            continue
        last_of_day: dict[date, datetime] = {}
        for age in range(versions - 1, -1, -1):
            generated_at = offer.generated_at - age * step
            last_of_day[capacity_day(generated_at)] = generated_at
        for day, generated_at in last_of_day.items():
            yield (*_key(offer), day, generated_at, offer.free_hours)


def _key(offer: Offer) -> tuple[str, str, str]:
    return offer.cluster, offer.member, offer.resource


def _message_id(offer: Offer) -> str:
    assert offer.envelope is not None
    return offer.envelope.message_id


def _seq(offer: Offer) -> int:
    assert offer.envelope is not None
    return offer.envelope.seq


def _copy(
    connection: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    names = ", ".join(f'"{column}"' for column in columns)
    with connection.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
