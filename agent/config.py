"""The agent's configuration file (``agent.yaml``) and its validation.

``load_config`` reads the file, expands ``${NAME}``, ``${NAME:-default}`` and ``${file:PATH}``,
applies the ``KOOPERANT_AGENT__*`` environment overrides (``agent.overrides``), validates every
section with frozen pydantic models that reject unknown keys, validates each adapter's own
settings with that adapter's ``settings_model`` and loads the policy file it points to. Any
problem raises ``ConfigError``, one line per problem, each naming the file, the line and the key
path. ``config/agent.example.yaml`` documents every key.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from datetime import date, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adapters.base import Adapter, AdapterSettings
from adapters.errors import UnknownAdapterError
from adapters.registry import load_adapter_class
from agent.calendar import WEEKDAYS, Shift, WorkingCalendar
from agent.errors import ConfigError, Problem
from agent.outbox import DEFAULT_MAX_AGE_HOURS, DEFAULT_MAX_MEGABYTES, MEGABYTE, OutboxLimits
from agent.overrides import apply_overrides
from agent.policy import Policy, load_policy
from agent.reasons import checked_identifier
from agent.validation_messages import MESSAGES
from agent.yamlfile import Location, YamlDocument
from kooperant.net import mask_url_credentials
from kooperant.protocol import ResourceKind

DEFAULT_TIMEZONE = "Europe/Warsaw"
MQTT_PORT = 1883
MQTTS_PORT = 8883
DEFAULT_AUDIT_LOG = Path("kooperant-audit.db")
DEFAULT_STATUS_HOST = "127.0.0.1"
DEFAULT_STATUS_PORT = 8791
# One week: how long the broker keeps the agent's session, and so its unacknowledged messages,
# after a disconnect.
DEFAULT_SESSION_EXPIRY_SECONDS = 604_800
# The largest MQTT 5 session expiry interval; the broker then never discards the session.
MAX_SESSION_EXPIRY_SECONDS = 4_294_967_295
_WALL_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _identifier(what: str) -> AfterValidator:
    return AfterValidator(lambda value: checked_identifier(value, what))


def _parse_wall_time(value: object) -> object:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 14:00 as the base-60 integer 840.
        hint = f'"{value // 60:02d}:{value % 60:02d}"'
        raise ValueError(MESSAGES("config.time_unquoted", hint=hint, value=value))
    if not isinstance(value, str) or not _WALL_TIME.match(value):
        raise ValueError(MESSAGES("config.time_invalid", value=value))
    return time.fromisoformat(value)


WallTime = Annotated[time, BeforeValidator(_parse_wall_time)]


def parse_broker_url(url: str) -> tuple[str, int, bool]:
    """Return ``(host, port, tls)`` of an ``mqtt://`` or ``mqtts://`` URL, or raise ValueError.

    Messages show the URL with its password masked, also where ``urlsplit`` does not find the
    user info (a password containing ``/``) or fails before the credentials check.
    """
    expected = MESSAGES("config.url_expected")
    masked_url = mask_url_credentials(url)
    # Python's own messages below are not shown, because they repeat parts of the URL.
    try:
        parts = urlsplit(url)
    except ValueError as error:
        reason = MESSAGES("config.url_unparsable", url=masked_url, expected=expected)
        raise ValueError(reason) from error
    bad_port = MESSAGES("config.url_port", url=masked_url, expected=expected)
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(bad_port) from error
    if port == 0:
        raise ValueError(bad_port)

    if parts.username is not None or parts.password is not None:
        # The URL is not echoed because it contains a credential.
        raise ValueError(MESSAGES("config.url_credentials"))
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(MESSAGES("config.url_invalid", url=masked_url, expected=expected))
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(MESSAGES("config.url_path", url=masked_url, expected=expected))
    tls = parts.scheme == "mqtts"
    return parts.hostname, port or (MQTTS_PORT if tls else MQTT_PORT), tls


def _check_broker_url(url: str) -> str:
    parse_broker_url(url)
    return url


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(MESSAGES("config.timezone_unknown", name=name)) from error
    return name


class _Frozen(BaseModel):
    # The docstrings below the fields become their descriptions in the JSON Schema.
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )


def _protocol_text(value: object) -> object:
    # YAML reads an unquoted 5 as a number; the version is compared as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class BrokerTlsSettings(_Frozen):
    """Files for a TLS connection to the broker; relative paths start at the config's folder.

    The server certificate and host name are always verified: against ``ca_file``, or against
    the system's CA certificates when it is not set. ``cert_file`` and ``key_file`` are the
    agent's client certificate, for a broker that requires one.
    """

    ca_file: Path | None = None
    """CA certificate file that the broker's certificate must chain to; default: the system's CAs.

    """
    cert_file: Path | None = None
    """The agent's client certificate, for a broker that requires one."""
    key_file: Path | None = None
    """Private key of cert_file, unless the certificate file contains it."""
    key_password: SecretStr | None = None
    """Password of an encrypted key_file."""

    @model_validator(mode="after")
    def _check_key(self) -> BrokerTlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError(MESSAGES("config.tls_key_without_cert"))
        if self.key_password is not None and self.cert_file is None:
            raise ValueError(MESSAGES("config.tls_password_without_cert"))
        return self


class BrokerSettings(_Frozen):
    """Connection settings for the cluster's MQTT broker."""

    url: Annotated[str, AfterValidator(_check_broker_url)]
    """The cluster's MQTT broker: mqtt://HOST[:PORT] (port 1883) or mqtts://HOST[:PORT] (TLS,
    8883), without credentials.
    """
    username: str | None = Field(default=None, min_length=1)
    """Login at the broker; null when the broker allows anonymous access, never empty."""
    password: SecretStr | None = None
    """Password at the broker; write ${file:PATH} or ${NAME} to keep it out of this file."""
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    """MQTT client id. Default: kooperant-agent-{member}."""
    reconnect_min_seconds: float = Field(default=1.0, gt=0, le=3600)
    """Delay before the first reconnect attempt, in seconds; it doubles after each failure."""
    reconnect_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    """Maximum delay between reconnect attempts, in seconds."""
    protocol: Annotated[Literal["auto", "5", "3.1.1"], BeforeValidator(_protocol_text)] = "auto"
    """MQTT version: auto tries 5 and falls back to 3.1.1; 5 or 3.1.1 fix the version."""
    session_expiry_seconds: int = Field(
        default=DEFAULT_SESSION_EXPIRY_SECONDS, ge=0, le=MAX_SESSION_EXPIRY_SECONDS
    )
    """How long the broker keeps the agent's session after a disconnect, in seconds."""
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """How long one connection attempt waits for the broker's CONNACK, in seconds."""
    tls: BrokerTlsSettings | None = None
    """TLS files, only with an mqtts:// URL; relative paths start at the config file's folder."""

    @field_validator("username")
    @classmethod
    def _check_username_not_blank(cls, username: str | None) -> str | None:
        # A user name of spaces only is a typing mistake in every broker's account list.
        if username is not None and not username.strip():
            raise ValueError(MESSAGES("config.username_blank"))
        return username

    @field_validator("password")
    @classmethod
    def _check_password_has_user(
        cls, password: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        # An MQTT CONNECT packet carries a password only after a user name. A username that
        # failed its own validation is missing from info.data and is reported on its own.
        if password is not None and "username" in info.data and info.data["username"] is None:
            raise ValueError(MESSAGES("config.password_without_username"))
        return password

    @model_validator(mode="after")
    def _check_reconnect(self) -> BrokerSettings:
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError(MESSAGES("config.reconnect_order"))
        return self

    @model_validator(mode="after")
    def _check_tls_scheme(self) -> BrokerSettings:
        if self.tls is not None and not self.uses_tls:
            raise ValueError(MESSAGES("config.tls_without_mqtts"))
        return self

    @property
    def host(self) -> str:
        return parse_broker_url(self.url)[0]

    @property
    def port(self) -> int:
        return parse_broker_url(self.url)[1]

    @property
    def uses_tls(self) -> bool:
        """Whether the URL is ``mqtts://``."""
        return parse_broker_url(self.url)[2]


class StatusSettings(_Frozen):
    """The agent's local status endpoint, which ``kooperant agent status`` reads."""

    enabled: bool = True
    """Whether the agent serves its status document for kooperant agent status."""
    host: str = Field(default=DEFAULT_STATUS_HOST, min_length=1, max_length=255)
    """Address the status endpoint listens on; keep 127.0.0.1 unless a monitoring host must reach
    it.
    """
    port: int = Field(default=DEFAULT_STATUS_PORT, ge=1, le=65535)
    """TCP port of the status endpoint."""

    @property
    def url(self) -> str:
        """The address of the status document, for example http://127.0.0.1:8791/status."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/status"


class OutboxSettings(_Frozen):
    """Bounds of the store-and-forward queue of messages the broker has not acknowledged yet."""

    max_megabytes: float = Field(default=DEFAULT_MAX_MEGABYTES, ge=1, le=1_000_000)
    """Total payload size, in millions of bytes; at least 1, the size of the largest message."""
    max_age_hours: float = Field(default=DEFAULT_MAX_AGE_HOURS, gt=0, le=87_600)
    """Age of the oldest message waiting for the broker, in hours; older ones are dropped."""

    def limits(self) -> OutboxLimits:
        return OutboxLimits(
            max_bytes=int(self.max_megabytes * MEGABYTE),
            max_age=timedelta(hours=self.max_age_hours),
        )


class ShiftSettings(_Frozen):
    """One weekly shift; an ``end`` not after ``start`` means the shift crosses midnight."""

    days: tuple[Weekday, ...] = Field(min_length=1)
    """Weekdays on which the shift starts: mon tue wed thu fri sat sun."""
    start: WallTime
    """Local start time, "HH:MM" in quotes."""
    end: WallTime
    """Local end time, "HH:MM" in quotes; not after start means the shift crosses midnight."""

    @model_validator(mode="after")
    def _check_length(self) -> ShiftSettings:
        if self.start == self.end:
            raise ValueError(MESSAGES("config.shift_empty", time=f"{self.start:%H:%M}"))
        return self

    def to_shift(self) -> Shift:
        return Shift(frozenset(WEEKDAYS.index(day) for day in self.days), self.start, self.end)


_WEEKDAYS_MON_FRI: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
DEFAULT_SHIFTS = (
    ShiftSettings(days=_WEEKDAYS_MON_FRI, start=time(6), end=time(14)),
    ShiftSettings(days=_WEEKDAYS_MON_FRI, start=time(14), end=time(22)),
)


class CalendarSettings(_Frozen):
    """Working shifts and the holidays on which no shift starts."""

    shifts: tuple[ShiftSettings, ...] = DEFAULT_SHIFTS
    """Weekly shifts; machines are offered only inside them."""
    holidays: tuple[date, ...] = ()
    """Dates (YYYY-MM-DD) on which no shift starts."""


class ResourceSettings(_Frozen):
    """An owner's description of one resource, used in its offer."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    """Display name shown in offers."""
    kind: ResourceKind | None = None
    """machine, storage, it_capacity, it_team or supplies."""
    capabilities: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = ()
    """Free-form tags that buyers search for."""
    tags: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = ()
    """Internal labels that policy rules select with ``tag:``; they never leave the agent."""


if TYPE_CHECKING:
    AdapterClass = type[Adapter[Any]]
else:
    # pydantic cannot build a schema for type[] of a parametrized generic.
    AdapterClass = type[Adapter]


class AdapterConfig(_Frozen):
    """One adapter instance: its registered type, its unique name and its validated settings."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    type_name: str
    name: str
    adapter_class: AdapterClass
    settings: AdapterSettings


ResourceId = Annotated[str, _identifier("resource")]


class AgentConfig(_Frozen):
    """The whole agent config file. Build it with ``load_config``."""

    member: Annotated[str, _identifier("member")]
    """Your company's id in the cluster: letters, digits, '.', '_' and '-'."""
    cluster: Annotated[str, _identifier("cluster")]
    """The cluster's id, shared by all members."""
    timezone: Annotated[str, AfterValidator(_check_timezone)] = DEFAULT_TIMEZONE
    """IANA time zone of the shifts, such as Europe/Warsaw."""
    horizon_days: int = Field(default=14, ge=1, le=366)
    """How many days ahead free hours are offered."""
    publish_interval_seconds: float = Field(default=60.0, gt=0, le=86400)
    """Every offer is sent again after this many seconds even if unchanged."""
    broker: BrokerSettings
    """Connection to the cluster's MQTT broker."""
    calendar: CalendarSettings = CalendarSettings()
    """Working shifts and holidays."""
    policy: Path
    """The sharing policy file, relative to this file; nothing is published unless it names the
    resource.
    """
    audit_log: Path = DEFAULT_AUDIT_LOG
    """SQLite file of every message the broker acknowledged, relative to this file."""
    status: StatusSettings = StatusSettings()
    """The local status endpoint that kooperant agent status reads."""
    outbox: OutboxSettings = OutboxSettings()
    """Bounds of the queue of messages waiting for the broker."""
    resources: dict[ResourceId, ResourceSettings] = Field(default_factory=dict)
    """Descriptions used in offers, keyed by resource id."""
    adapters: tuple[AdapterConfig, ...] = ()
    """Data sources: each entry has type (an installed adapter), a unique name and the adapter's
    settings.
    """

    _source: Path = PrivateAttr(default=Path("agent.yaml"))
    _policy: Policy = PrivateAttr(default_factory=lambda: Policy({}))
    _variables: Mapping[str, str] | None = PrivateAttr(default=None)
    _overrides: tuple[str, ...] = PrivateAttr(default=())
    _secret_files: tuple[Path, ...] = PrivateAttr(default=())

    @property
    def source(self) -> Path:
        """The file this config was read from."""
        return self._source

    @property
    def config_dir(self) -> Path:
        """The folder of the config file; relative paths in the config start here."""
        return self._source.parent

    @property
    def policy_path(self) -> Path:
        return self.resolve(self.policy)

    def resolve(self, path: Path) -> Path:
        """Return ``path`` as written in the config, starting at ``config_dir`` if relative."""
        return path if path.is_absolute() else self.config_dir / path

    @property
    def audit_log_path(self) -> Path:
        """The audit log's SQLite file; a relative ``audit_log`` starts at ``config_dir``."""
        return self.audit_log if self.audit_log.is_absolute() else self.config_dir / self.audit_log

    @property
    def variables(self) -> Mapping[str, str] | None:
        """The values ``${NAME}`` was filled from; ``None`` means the process environment."""
        return self._variables

    @property
    def overrides(self) -> tuple[str, ...]:
        """Names of the ``KOOPERANT_AGENT__*`` variables that replaced values of the file."""
        return self._overrides

    @property
    def secret_files(self) -> tuple[Path, ...]:
        """Files the config and its policy read secrets from: ``${file:PATH}`` references and
        ``KOOPERANT_AGENT__..._FILE`` variables. Paths only, never the contents.
        """
        return tuple(dict.fromkeys((*self._secret_files, *self._policy.secret_files)))

    @property
    def sharing_policy(self) -> Policy:
        """The policy loaded from ``policy_path`` by ``load_config``."""
        return self._policy

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"kooperant-agent-{self.member}"

    def working_calendar(self) -> WorkingCalendar:
        shifts = tuple(shift.to_shift() for shift in self.calendar.shifts)
        return WorkingCalendar(self.zone, shifts, frozenset(self.calendar.holidays))


LoadHook = Callable[["AgentConfig"], None]
_load_hooks: list[LoadHook] = []


def add_load_hook(hook: LoadHook) -> None:
    """Call ``hook`` with each config ``load_config`` validates from now on; once per hook.

    The command line registers the config's secrets for masking in log lines this way, so that
    this module does not decide how the process logs.
    """
    if hook not in _load_hooks:
        _load_hooks.append(hook)


def load_config(path: Path, variables: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and validate the agent config at ``path`` and the policy file it names.

    ``variables`` fills ``${NAME}`` references and holds the ``KOOPERANT_AGENT__*`` overrides
    (default: ``os.environ``). Raises ``ConfigError`` listing every problem with its file, line
    and key path, or with the variable that set the value.
    """
    document = YamlDocument.load(path, variables)
    if not isinstance(document.data, dict):
        raise document.error((), MESSAGES("config.not_mapping"))

    environment = os.environ if variables is None else variables
    applied, override_problems = apply_overrides(
        document.data, environment, path.parent, AgentConfig
    )
    if override_problems:
        raise ConfigError(path, override_problems)
    overrides = {override.location: override.variable for override in applied}
    document = dataclasses.replace(document, overrides=overrides)

    raw = dict(document.data)
    adapters, problems = _load_adapters(document, raw.pop("adapters", None))
    config = None
    try:
        config = AgentConfig.model_validate({**raw, "adapters": adapters})
    except ValidationError as error:
        problems += document.validation_problems(error)
    if problems or config is None:
        problems.sort(key=lambda problem: problem.line or 0)
        raise ConfigError(path, problems)

    config._source = path
    config._variables = variables
    config._overrides = tuple(override.variable for override in applied)
    override_files = [override.secret_file for override in applied if override.secret_file]
    config._secret_files = tuple(dict.fromkeys((*document.secret_files, *override_files)))
    for hook in _load_hooks:
        hook(config)
    tls_problems = _missing_tls_files(document, config)
    if tls_problems:
        raise ConfigError(path, tls_problems)
    config._policy = load_policy(config.policy_path, variables)
    return config


def _missing_tls_files(document: YamlDocument, config: AgentConfig) -> list[Problem]:
    tls = config.broker.tls
    if tls is None:
        return []
    problems = []
    files = (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file))
    for key, value in files:
        if value is None:
            continue
        resolved = config.resolve(value)
        if not resolved.is_file():
            reason = MESSAGES("config.tls_file_missing", path=resolved)
            problems.append(document.problem(("broker", "tls", key), reason))
    return problems


def _load_adapters(
    document: YamlDocument, entries: object
) -> tuple[list[AdapterConfig], list[Problem]]:
    if entries is None:
        return [], []
    if not isinstance(entries, list):
        problem = document.problem(("adapters",), MESSAGES("config.adapters_not_list"))
        return [], [problem]

    adapters: list[AdapterConfig] = []
    problems: list[Problem] = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        where: Location = ("adapters", index)
        try:
            adapter = _load_adapter(document, where, entry)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        if adapter.name in names:
            reason = MESSAGES("config.adapter_name_repeated", name=adapter.name)
            problems.append(document.problem((*where, "name"), reason))
        names.add(adapter.name)
        adapters.append(adapter)
    return adapters, problems


def _load_adapter(document: YamlDocument, where: Location, entry: object) -> AdapterConfig:
    if not isinstance(entry, dict):
        raise document.error(where, MESSAGES("config.adapter_not_mapping"))
    settings = dict(entry)
    adapter_type = settings.pop("type", None)
    name = settings.pop("name", None)

    if not isinstance(adapter_type, str):
        raise document.error((*where, "type"), MESSAGES("config.adapter_type_missing"))
    if not isinstance(name, str):
        raise document.error((*where, "name"), MESSAGES("config.adapter_name_missing"))
    try:
        checked_identifier(name, "adapter")
    except ValueError as error:
        raise document.error((*where, "name"), str(error)) from error

    try:
        adapter_class = load_adapter_class(adapter_type)
    except UnknownAdapterError as error:
        installed = ", ".join(error.known) or MESSAGES("config.adapter_types_none")
        reason = MESSAGES("config.adapter_type_unknown", type=adapter_type, installed=installed)
        raise document.error((*where, "type"), reason) from error
    except (ImportError, TypeError) as error:
        reason = MESSAGES("config.adapter_type_broken", type=adapter_type, error=error)
        raise document.error((*where, "type"), reason) from error

    try:
        validated = adapter_class.settings_model.model_validate(settings)
    except ValidationError as error:
        raise ConfigError(document.path, document.validation_problems(error, where)) from error
    return AdapterConfig(
        type_name=adapter_type, name=name, adapter_class=adapter_class, settings=validated
    )
