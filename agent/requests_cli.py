"""``kooperant agent requests``, ``accept``, ``decline`` and ``release``: the owner's side.

``requests`` lists the capacity requests the agent stored. ``accept`` and ``decline`` record the
owner's decision in the agent's local SQLite file and queue the answer in the outbox of the same
file, in one transaction, so the running agent sends it within a second and an agent that is
not running sends it at its next start. ``release`` ends the hold of an accepted request: the
running agent notices it within a second and offers the held time or amount again at once.

A request is named by its id or by a unique prefix of at least 8 characters. Exit status 2 and
a message naming the value for every error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer

from agent.config import AgentConfig, load_config
from agent.errors import AuditLogError, ConfigError
from agent.outbox import Outbox
from agent.request_capacity import CapacityConflictError, Conflict, still_held
from agent.request_texts import (
    escape_controls,
    is_control,
    request_document,
    request_lines,
    when,
)
from agent.requests import (
    Acceptance,
    HoldEnd,
    RequestLookupError,
    RequestStateError,
    RequestStore,
    StoredRequest,
)
from kooperant.i18n import Catalog, current_language, format_decimal
from kooperant.protocol.answer import MAX_DECLINE_REASON_CHARACTERS

EXIT_USAGE_ERROR = 2

_ = Catalog.for_module(__name__)

REQUESTS_HELP = _("requests.help")
ACCEPT_HELP = _("accept.help")
DECLINE_HELP = _("decline.help")
RELEASE_HELP = _("release.help")

IdArgument = Annotated[str, typer.Argument(metavar="ID", help=_("id.help"), show_default=False)]
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))]


def requests(
    config: ConfigOption,
    show_all: Annotated[bool, typer.Option("--all", help=_("all.help"))] = False,
    as_json: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
) -> None:
    loaded = _load_config(config)
    now = datetime.now(UTC)
    if not loaded.audit_log_path.exists():
        # Opening the file would create it, and listing must not write anything.
        typer.echo("[]" if as_json else _("list.none_all"))
        return
    stored = _read(loaded)
    listed = [item for item in stored if show_all or _listed_by_default(item, now)]
    if as_json:
        documents = [request_document(item, now) for item in listed]
        typer.echo(json.dumps(documents, ensure_ascii=False, indent=2))
        return
    if not listed:
        typer.echo(_("list.none_all" if show_all else "list.none", count=len(stored)))
        return
    blocks = ["\n".join(request_lines(item, now, loaded.zone, config)) for item in listed]
    typer.echo("\n\n".join(blocks))


def accept(
    request_id: IdArgument,
    config: ConfigOption,
    force: Annotated[bool, typer.Option("--force", help=_("force.help"))] = False,
) -> None:
    loaded = _load_config(config)
    now = datetime.now(UTC)
    acceptance = _accept(loaded, request_id, now, force)
    stored = acceptance.stored
    typer.echo(_("accepted", id=stored.request_id))
    for unchecked in acceptance.unchecked:
        typer.echo(_(f"unchecked.{unchecked}", resource=stored.request.resource), err=True)
    request = stored.request
    if request.slot is not None:
        typer.echo(
            _(
                "held.slot",
                resource=request.resource,
                slot=when(request.slot, loaded.zone),
                id=stored.request_id,
                config=config,
            )
        )
    elif request.amount is not None:
        amount = request.amount
        typer.echo(
            _(
                "held.amount",
                resource=request.resource,
                value=format_decimal(amount.value, current_language()),
                unit=escape_controls(amount.unit),
                quantity=escape_controls(amount.quantity),
                id=stored.request_id,
                config=config,
            )
        )
    typer.echo(_("queued"))


def decline(
    request_id: IdArgument,
    config: ConfigOption,
    reason: Annotated[
        str | None, typer.Option("--reason", help=_("reason.help"), show_default=False)
    ] = None,
) -> None:
    checked = check_reason(reason)
    loaded = _load_config(config)
    stored = _decide(loaded, request_id, False, checked, datetime.now(UTC))
    typer.echo(_("declined", id=stored.request_id))
    typer.echo(_("queued"))


def release(request_id: IdArgument, config: ConfigOption) -> None:
    loaded = _load_config(config)
    now = datetime.now(UTC)
    try:
        with _store(loaded) as store:
            stored = store.end_hold(request_id, HoldEnd.RELEASED, now)
            holding = [item.request for item in store.read() if item.holding(now)]
            others = still_held(stored.request, holding)
    except (RequestLookupError, RequestStateError) as error:
        _fail(_request_error(error, loaded, config), error)
    except AuditLogError as error:
        _fail(_("log.failed", error=error), error)
    typer.echo(_("released", id=stored.request_id, resource=stored.request.resource))
    if others:
        typer.echo(_("released.still_held", ids=", ".join(others)))


def check_reason(reason: str | None) -> str:
    """Return the decline reason, or exit with the message saying what is wrong with it."""
    if reason is None:
        _fail(_("reason.missing"))
    if not reason.strip():
        _fail(_("reason.empty", reason=reason))
    if len(reason) > MAX_DECLINE_REASON_CHARACTERS:
        _fail(_("reason.too_long", length=len(reason), maximum=MAX_DECLINE_REASON_CHARACTERS))
    for position, character in enumerate(reason, start=1):
        if is_control(character):
            _fail(_("reason.control", character=repr(character), position=position))
    return reason


def _listed_by_default(stored: StoredRequest, now: datetime) -> bool:
    return stored.state == "open" and not stored.expired(now)


def _decide(
    config: AgentConfig, value: str, accept: bool, reason: str | None, now: datetime
) -> StoredRequest:
    try:
        with _store(config) as store:
            return store.decide(value, accept, reason, now)
    except (RequestLookupError, RequestStateError) as error:
        _fail(_request_error(error, config, config.source), error)
    except AuditLogError as error:
        _fail(_("log.failed", error=error), error)


def _accept(config: AgentConfig, value: str, now: datetime, force: bool) -> Acceptance:
    try:
        with _store(config) as store:
            return store.accept(value, now, force=force)
    except (RequestLookupError, RequestStateError) as error:
        _fail(_request_error(error, config, config.source), error)
    except CapacityConflictError as error:
        _fail(_conflict_error(error, config), error)
    except AuditLogError as error:
        _fail(_("log.failed", error=error), error)


def _conflict_error(error: CapacityConflictError, config: AgentConfig) -> str:
    request = error.request
    force = _("conflict.force", id=request.request_id, config=config.source)
    if error.conflict is not Conflict.AMOUNT_ABOVE:
        slot = "" if request.slot is None else when(request.slot, config.zone)
        message = _(
            f"conflict.{error.conflict}",
            id=request.request_id,
            resource=request.resource,
            others=", ".join(error.others),
            slot=slot,
        )
        return f"{message} {force}"

    amount = request.amount
    assert amount is not None and error.available is not None  # set for this conflict
    message = _(
        "conflict.amount_above_held" if error.others else "conflict.amount_above",
        id=request.request_id,
        resource=request.resource,
        others=", ".join(error.others),
        value=format_decimal(amount.value, current_language()),
        available=format_decimal(error.available, current_language()),
        unit=escape_controls(amount.unit),
        quantity=escape_controls(amount.quantity),
    )
    return f"{message} {force}"


def _request_error(
    error: RequestLookupError | RequestStateError, config: AgentConfig, path: Path
) -> str:
    if isinstance(error, RequestLookupError):
        if not error.matches:
            return _("request.unknown", value=error.value, config=path)
        matches = ", ".join(error.matches)
        return _("request.ambiguous", value=error.value, count=len(error.matches), ids=matches)

    stored = error.stored
    zone = config.zone
    if error.problem == "decided":
        assert stored.decided_at is not None  # set with every decision
        state = _(f"state.{stored.state}")
        return _(
            "request.decided", id=stored.request_id, state=state, time=_at(stored.decided_at, zone)
        )
    if error.problem == "closed":
        assert stored.cleared_at is not None  # set when the request is closed
        return _("request.closed", id=stored.request_id, time=_at(stored.cleared_at, zone))
    if error.problem == "expired":
        return _("request.expired", id=stored.request_id, time=_at(stored.request.expires_at, zone))
    return _not_held(stored, config)


def _not_held(stored: StoredRequest, config: AgentConfig) -> str:
    zone = config.zone
    if stored.state != "accepted":
        return _("release.not_accepted", id=stored.request_id, state=_(f"state.{stored.state}"))
    if stored.hold_end is not None and stored.hold_ended_at is not None:
        time = _at(stored.hold_ended_at, zone)
        return _(f"release.{stored.hold_end}", id=stored.request_id, time=time)
    slot = stored.request.slot
    assert slot is not None  # an accepted amount request holds until released
    return _("release.slot_passed", id=stored.request_id, time=_at(slot.end, zone))


def _at(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(sep=" ", timespec="minutes")


def _read(config: AgentConfig) -> list[StoredRequest]:
    try:
        with _store(config) as store:
            return store.read()
    except AuditLogError as error:
        _fail(_("log.failed", error=error), error)


class _StoreFiles:
    """The outbox and the request table of one config's file, closed together."""

    def __init__(self, config: AgentConfig) -> None:
        self._outbox = Outbox(config.audit_log_path, config.outbox.limits())
        try:
            self._store = RequestStore(self._outbox, config.cluster, config.member)
        except AuditLogError:
            self._outbox.close()
            raise

    def __enter__(self) -> RequestStore:
        return self._store

    def __exit__(self, *exc_info: object) -> None:
        self._store.close()
        self._outbox.close()


def _store(config: AgentConfig) -> _StoreFiles:
    return _StoreFiles(config)


def _load_config(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        _fail(_("config.invalid", details=error), error)


def _fail(message: str, cause: BaseException | None = None) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE_ERROR) from cause
