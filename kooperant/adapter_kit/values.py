"""Checks of the values an adapter exposes: its settings model, observations, health and
withheld kinds. Each check raises ``ConformanceError`` naming the rule and the offending value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from adapters.base import (
    Adapter,
    AdapterSettings,
    MachineStatus,
    Observation,
    ResourceAmounts,
    ScheduledWork,
    SourceHealth,
    SupplyStock,
)
from kooperant.adapter_kit.rules import ConformanceError, Rule
from kooperant.protocol import IDENTIFIER_PATTERN, Amount, ResourceKind

OBSERVATION_TYPES = (MachineStatus, ScheduledWork, ResourceAmounts, SupplyStock)
UNKNOWN_KEY = "kooperant_kit_unknown_key"
MAX_SHOWN_CHARS = 300

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def check_settings(adapter_class: type[Adapter[Any]], sample: Mapping[str, Any]) -> AdapterSettings:
    """Check the settings model of ``adapter_class`` and return it built from ``sample``."""
    model = getattr(adapter_class, "settings_model", None)
    if not (isinstance(model, type) and issubclass(model, AdapterSettings)):
        raise ConformanceError(
            Rule.SETTINGS_MODEL, f"{adapter_class.__qualname__}.settings_model is {model!r}"
        )

    try:
        settings = model.model_validate(dict(sample))
    except ValidationError as error:
        raise ConformanceError(Rule.SETTINGS_SAMPLE, f"{model.__qualname__}: {error}") from error

    with_unknown_key = {**sample, UNKNOWN_KEY: 1}
    try:
        model.model_validate(with_unknown_key)
    except ValidationError:
        pass
    else:
        raise ConformanceError(
            Rule.SETTINGS_UNKNOWN_KEY, f"{model.__qualname__} accepted the key {UNKNOWN_KEY!r}"
        )

    _check_frozen(settings)
    _check_nested_models(model, model.__qualname__, set())
    return settings


def _check_nested_models(model: type[BaseModel], where: str, seen: set[type[BaseModel]]) -> None:
    """Check every model reachable from ``model``'s fields, through lists, dicts and unions."""
    if model in seen:
        return
    seen.add(model)
    config = model.model_config
    if config.get("extra") != "forbid" or config.get("allow_inf_nan", True):
        raise ConformanceError(
            Rule.SETTINGS_NESTED,
            f"{where} ({model.__qualname__}) has extra={config.get('extra')!r} and "
            f"allow_inf_nan={config.get('allow_inf_nan', True)!r}; subclass AdapterSettings",
        )
    for name, field in model.model_fields.items():
        for nested in _models_in(field.annotation):
            _check_nested_models(nested, f"{where}.{name}", seen)


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for argument in get_args(annotation):
        found.extend(_models_in(argument))
    return found


def _check_frozen(settings: AdapterSettings) -> None:
    field_name = next(iter(type(settings).model_fields), None)
    if field_name is None:
        return
    try:
        setattr(settings, field_name, getattr(settings, field_name))
    except ValidationError:
        return
    raise ConformanceError(
        Rule.SETTINGS_FROZEN, f"{type(settings).__qualname__}.{field_name} could be assigned"
    )


def check_observations(observations: object) -> list[Observation]:
    """Check what ``collect()`` returned and return it as a list of observations."""
    if not isinstance(observations, list):
        raise ConformanceError(Rule.COLLECT_TYPE, f"collect() returned {_show(observations)}")

    for index, observation in enumerate(observations):
        check_observation(observation, f"item {index}")
    return observations


def check_observation(observation: object, where: str = "observation") -> None:
    """Check one observation; ``where`` names it in the ``ConformanceError``.

    The agent runs the same check on everything an adapter collects and leaves out what fails.
    """
    if not isinstance(observation, OBSERVATION_TYPES):
        raise ConformanceError(Rule.COLLECT_TYPE, f"{where} is {_show(observation)}")
    _check_observation(f"{where} ({type(observation).__name__})", observation)


def _check_observation(where: str, observation: Observation) -> None:
    if not (isinstance(observation.resource, str) and _IDENTIFIER.match(observation.resource)):
        raise ConformanceError(Rule.RESOURCE_ID, f"{where} has resource {observation.resource!r}")

    if isinstance(observation, MachineStatus):
        _check_aware(Rule.AWARE_TIME, f"{where}.since", observation.since)
    if isinstance(observation, ResourceAmounts | SupplyStock):
        _check_amounts(f"{where} of {observation.resource!r}", observation.amounts)
    if isinstance(observation, SupplyStock) and observation.price is not None:
        _check_finite(f"{where} of {observation.resource!r}: price", observation.price.value)


def _check_amounts(where: str, amounts: Iterable[Amount]) -> None:
    for amount in amounts:
        if not isinstance(amount, Amount):
            raise ConformanceError(Rule.COLLECT_TYPE, f"{where}: amount {_show(amount)}")
        label = f"{where}: amount {amount.quantity!r}"
        if amount.value is not None:
            _check_finite(label, amount.value)
        if amount.band is not None:
            _check_finite(f"{label} band min", amount.band.min)
            if amount.band.max is not None:
                _check_finite(f"{label} band max", amount.band.max)


def _check_finite(where: str, value: object) -> None:
    number_types = (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types) or not math.isfinite(value):
        raise ConformanceError(Rule.FINITE_NUMBER, f"{where} is {value!r}")


def _check_aware(rule: Rule, where: str, value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConformanceError(rule, f"{where} is {value!r}")


def check_health(health: object) -> list[SourceHealth]:
    """Check what ``health()`` returned and return it."""
    if not isinstance(health, list):
        raise ConformanceError(Rule.HEALTH_TYPE, f"health() returned {_show(health)}")

    for index, item in enumerate(health):
        if not isinstance(item, SourceHealth):
            raise ConformanceError(Rule.HEALTH_TYPE, f"item {index} is {_show(item)}")
        _check_aware(Rule.AWARE_TIME, f"health item {index} ({item.source}).since", item.since)
        if item.last_data is not None:
            where = f"health item {index} ({item.source}).last_data"
            _check_aware(Rule.AWARE_TIME, where, item.last_data)
    return health


def check_withheld(withheld: object) -> Mapping[ResourceKind, str]:
    """Check what ``withheld_kinds()`` returned and return it."""
    if not isinstance(withheld, Mapping):
        raise ConformanceError(Rule.WITHHELD_TYPE, f"withheld_kinds() returned {_show(withheld)}")

    for kind, reason in withheld.items():
        if not isinstance(kind, ResourceKind) or not isinstance(reason, str):
            raise ConformanceError(Rule.WITHHELD_TYPE, f"entry {kind!r}: {reason!r}")
    return withheld


def _show(value: object) -> str:
    text = f"{type(value).__name__} {value!r}"
    if len(text) > MAX_SHOWN_CHARS:
        text = text[: MAX_SHOWN_CHARS - 3] + "..."
    return text
