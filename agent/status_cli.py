"""``kooperant agent status``: ask the running agent how its broker and sources are doing.

The command reads only the ``status`` section and the ``member`` of the agent config, so it still
works while the rest of the file or the policy is being edited. It applies the
``KOOPERANT_AGENT__STATUS__*`` and ``KOOPERANT_AGENT__MEMBER`` overrides as ``agent run`` does,
and ignores variables for other keys. It fetches the status document from the running
agent's local endpoint (``agent/status_http.py``). Exit status: 0 when the broker and every source
are connected and the policy is valid, 1 when something needs attention (also when the outbox
dropped messages at its limit or the broker rejected some), 2 when no agent responds or the config
cannot be read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from agent.config import AgentConfig, StatusSettings
from agent.errors import ConfigError
from agent.overrides import apply_overrides, variables_for
from agent.source_details import source_detail_text
from agent.status import STATUS_SCHEMA
from agent.yamlfile import YamlDocument
from kooperant.i18n import Catalog

EXIT_ATTENTION = 1
EXIT_NO_ANSWER = 2
REQUEST_TIMEOUT_SECONDS = 5.0
# The top-level keys of the config that the command reads.
_READ_KEYS = ("status", "member")

_ = Catalog.for_module(__name__)


def status(
    config: Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))],
    as_json: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
) -> None:
    settings, member = _status_settings(config)
    document = _fetch(settings, config)
    if member is not None and document["member"] != member:
        typer.echo(
            _(
                "other_agent",
                url=settings.url,
                found=document["member"],
                member=member,
                path=config,
            ),
            err=True,
        )
        raise typer.Exit(EXIT_NO_ANSWER)
    if as_json:
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        typer.echo(render_status(document))
    if needs_attention(document):
        raise typer.Exit(EXIT_ATTENTION)


def needs_attention(document: dict[str, Any]) -> bool:
    """Return whether the broker or a source is down, an adapter failed or the policy is broken."""
    if not document["broker"]["connected"] or document["policy_error"]:
        return True
    outbox = document.get("outbox")
    if outbox and (outbox["dropped_messages"] or outbox["rejected_messages"]):
        return True
    for adapter in document["adapters"]:
        if not adapter["started"] or adapter["collect_failing"]:
            return True
        for source in adapter["sources"]:
            if source["state"] != "connected" or source.get("stale"):
                return True
    return False


def render_status(document: dict[str, Any]) -> str:
    """Return the status document as text: a header, the broker, the policy and a table."""
    broker = document["broker"]
    lines = [
        _(
            "header",
            member=document["member"],
            cluster=document["cluster"],
            started=_local_time(document["started_at"]),
            now=_local_time(document["now"]),
        ),
        _(
            "broker.connected" if broker["connected"] else "broker.disconnected",
            url=broker["url"],
            published=broker["published_messages"],
            failed=broker["failed_attempts"],
        ),
    ]
    if broker["connected"] and broker["failed_attempts"]:
        lines.append(_("broker.failures", failed=broker["failed_attempts"]))
    outbox = document.get("outbox")
    if outbox:
        lines.append(_outbox_text(outbox))
        if outbox["queued_bytes"]:
            lines.append(_("outbox.bytes", bytes=outbox["queued_bytes"]))
    lines.extend(_process_lines(document))
    requests = document.get("requests")
    if requests:
        lines.append(_("requests", **requests))
    if document["policy_error"]:
        lines.append(_("policy.error", error=document["policy_error"]))
    lines.append("")
    rows = [_("columns").split("|")]
    details = []
    for adapter in document["adapters"]:
        details.append(_collect_text(adapter))
        if not adapter["sources"]:
            rows.append([adapter["name"], adapter["type"], "-", _adapter_state(adapter)])
        for source in adapter["sources"]:
            rows.append(
                [
                    adapter["name"],
                    adapter["type"],
                    source["source"],
                    _(f"state.{source['state']}"),
                    _local_time(source["since"]),
                    str(source["reconnects"]),
                    _local_time(source["last_data"]),
                    _errors_text(source["errors"]),
                ]
            )
            detail = source_detail_text(
                source["detail"], source.get("detail_code"), source.get("detail_values") or {}
            )
            if detail:
                details.append(_("detail", source=source["source"], detail=detail))
            if source.get("stale"):
                time = _local_time(source["last_data"])
                details.append(_("stale", source=source["source"], time=time))
    lines.extend(_table(rows))
    lines.extend(details)
    return "\n".join(lines)


def _process_lines(document: dict[str, Any]) -> list[str]:
    """Return the version and the last cycle, for documents of agents that report them."""
    lines = []
    if "version" in document:
        lines.append(_("version", version=document["version"]))
    if "last_cycle_at" in document:
        lines.append(_("cycle", time=_local_time(document["last_cycle_at"])))
    return lines


def _collect_text(adapter: dict[str, Any]) -> str:
    return _(
        "adapter.collects",
        adapter=adapter["name"],
        count=adapter["observations"],
        failures=adapter.get("collect_failures", 0),
        time=_local_time(adapter.get("last_collected_at")),
    )


def _outbox_text(outbox: dict[str, Any]) -> str:
    counts = {"dropped": outbox["dropped_messages"], "rejected": outbox["rejected_messages"]}
    queued = outbox["queued_messages"]
    if queued is None:
        return _("outbox.unreadable", **counts)
    if queued == 0:
        return _("outbox.empty", **counts)
    age = _duration_text(outbox["oldest_queued_age_seconds"] or 0.0)
    return _("outbox", queued=queued, age=age, **counts)


def _duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _adapter_state(adapter: dict[str, Any]) -> str:
    if not adapter["started"]:
        return _("adapter.not_started")
    if adapter["collect_failing"]:
        return _("adapter.failing")
    return _("adapter.running", count=adapter["observations"])


def _errors_text(errors: dict[str, int]) -> str:
    counted = [f"{name}={count}" for name, count in errors.items() if count]
    return ", ".join(counted) or "-"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows if column < len(row)) for column in range(8)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]


def _local_time(text: str | None) -> str:
    if text is None:
        return "-"
    # With the offset, because the viewer's time zone may differ from the agent's.
    return datetime.fromisoformat(text).astimezone().isoformat(sep=" ", timespec="seconds")


def _status_settings(path: Path) -> tuple[StatusSettings, str | None]:
    """Return the status section and the member id of the config, if it names one."""
    try:
        document = _with_overrides(_load_ignoring_other_variables(path))
        data = document.data if isinstance(document.data, dict) else {}
        member = data.get("member")
        try:
            settings = StatusSettings.model_validate(data.get("status") or {})
            return settings, member if isinstance(member, str) else None
        except ValidationError as error:
            raise ConfigError(path, document.validation_problems(error, ("status",))) from error
    except ConfigError as error:
        typer.echo(_("config.invalid", details=error), err=True)
        raise typer.Exit(EXIT_NO_ANSWER) from error


def _with_overrides(document: YamlDocument) -> YamlDocument:
    """Apply the ``KOOPERANT_AGENT__*`` variables for ``status`` and ``member`` to ``document``.

    Raises ``ConfigError`` naming the variable when one of them cannot be applied.
    """
    if not isinstance(document.data, dict):
        return document
    variables = variables_for(os.environ, _READ_KEYS)
    applied, problems = apply_overrides(document.data, variables, document.path.parent, AgentConfig)
    if problems:
        raise ConfigError(document.path, problems)
    overrides = {override.location: override.variable for override in applied}
    return dataclasses.replace(document, overrides=overrides)


def _load_ignoring_other_variables(path: Path) -> YamlDocument:
    """Load the config, letting ``${NAME}`` outside ``status`` and ``member`` stay unset.

    The agent may run with variables this shell does not have, such as a broker password.
    """
    try:
        return YamlDocument.load(path)
    except ConfigError as error:
        needed = [
            problem
            for problem in error.problems
            if problem.key.split(".")[0].split("[")[0] in (*_READ_KEYS, "")
        ]
        if needed:
            raise
    return YamlDocument.load(path, _VariablesOrEmpty(os.environ))


class _VariablesOrEmpty(Mapping[str, str]):
    """Environment variables, with an empty value for every name that is not set."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self._variables = variables

    def __getitem__(self, name: str) -> str:
        return self._variables.get(name, "")

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


def _fetch(settings: StatusSettings, path: Path) -> dict[str, Any]:
    if not settings.enabled:
        typer.echo(_("disabled", path=path), err=True)
        raise typer.Exit(EXIT_NO_ANSWER)
    url = settings.url
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            body = response.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        typer.echo(_("no_response", url=url, detail=reason, path=path), err=True)
        raise typer.Exit(EXIT_NO_ANSWER) from error
    try:
        document = json.loads(body)
    except ValueError as error:
        typer.echo(_("not_status", url=url, detail="not JSON"), err=True)
        raise typer.Exit(EXIT_NO_ANSWER) from error
    if not isinstance(document, dict) or document.get("schema") != STATUS_SCHEMA:
        schema = document.get("schema") if isinstance(document, dict) else None
        typer.echo(_("not_status", url=url, detail=f"schema {schema!r}"), err=True)
        raise typer.Exit(EXIT_NO_ANSWER)
    return document


HELP = _("help")
