"""``kooperant agent check``: validate the config and policy, then lint the policy.

Exit status: 0 when the policy is valid and has no warnings, 1 when it has warnings or an adapter
withholds a whole kind of offers, 2 when the config or the policy is invalid (or an option is).
Nothing connects to the broker.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.broker_session import check_broker_tls
from agent.check import CheckResult, check_policy
from agent.config import AgentConfig, load_config
from agent.errors import ConfigError, Problem
from agent.export_progress import export_progress_display
from agent.policy.lint import PolicyWarning
from agent.preview import DEFAULT_WAIT_SECONDS
from agent.source_details import source_detail_text
from kooperant.i18n import Catalog

EXIT_WARNINGS = 1

_ = Catalog.for_module(__name__)

HELP = _("help")


def check(
    config: Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))],
    wait: Annotated[float, typer.Option("--wait", help=_("wait.help"))] = DEFAULT_WAIT_SECONDS,
    offline: Annotated[bool, typer.Option("--offline", help=_("offline.help"))] = False,
    json_output: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
) -> None:
    if not math.isfinite(wait) or wait < 0:
        typer.echo(_("wait.invalid", value=wait), err=True)
        raise typer.Exit(_exit_errors())
    try:
        loaded = load_config(config)
        check_broker_tls(loaded)
    except ConfigError as error:
        if json_output:
            typer.echo(json.dumps(error_document(error), ensure_ascii=False, indent=2))
        else:
            typer.echo(_("invalid", details=error), err=True)
        raise typer.Exit(_exit_errors()) from error

    with export_progress_display(enabled=not json_output) as read_progress:
        result = asyncio.run(
            check_policy(loaded, offline=offline, wait_seconds=wait, read_progress=read_progress)
        )

    if json_output:
        typer.echo(json.dumps(check_document(loaded, result), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_check(loaded, result, wait))
    if not result.clean:
        raise typer.Exit(EXIT_WARNINGS)


def format_check(config: AgentConfig, result: CheckResult, wait_seconds: float) -> str:
    """Return the check's report in the current language."""
    lines: list[str] = []
    if config.overrides:
        lines.append(_("overrides", names=", ".join(config.overrides)))
    if not result.ready:
        lines.append(_("not_ready", seconds=f"{wait_seconds:g}"))
    for kind, reason in result.withheld_kinds.items():
        lines.append(_("withheld.kind", kind=kind.value, reason=reason))
    for problem in result.source_problems:
        detail = source_detail_text(problem.detail, problem.detail_code, problem.detail_values)
        if detail is not None:
            lines.append(
                _("source.failed", adapter=problem.adapter, source=problem.source, detail=detail)
            )
        if problem.stale:
            lines.append(_("source.stale", adapter=problem.adapter, source=problem.source))
    for conflict in result.conflicts:
        key = "conflict.kinds" if len(conflict.kinds) > 1 else "conflict.amounts"
        adapters = ", ".join(conflict.adapters)
        kinds = ", ".join(conflict.kinds)
        lines.append(_(key, resource=conflict.resource, adapters=adapters, kinds=kinds))
    for warning in result.warnings:
        place = Problem(warning.line, warning.key, localized_reason(warning))
        lines.append(_("warning", place=place.format(config.policy_path)))

    policy = config.policy_path
    count = len(result.resources)
    resources = ", ".join(result.resources) or _("none")
    if result.clean:
        lines.append(_("summary.clean", policy=policy, count=count, resources=resources))
    else:
        warnings = len(result.warnings) + len(result.withheld_kinds) + len(result.source_problems)
        summary = _(
            "summary.warnings", policy=policy, count=count, resources=resources, warnings=warnings
        )
        lines.append(summary)
    return "\n".join(lines)


def localized_reason(problem: Problem) -> str:
    """Return the reason of a lint warning in the current language."""
    if isinstance(problem, PolicyWarning) and problem.code:
        return _(f"lint.{problem.code}", None, **problem.values)
    return problem.reason


def check_document(config: AgentConfig, result: CheckResult) -> dict[str, Any]:
    """Return the check's result as one JSON-ready document, messages in English."""
    return {
        "config": str(config.source),
        "policy": str(config.policy_path),
        "valid": True,
        "overrides": list(config.overrides),
        "clean": result.clean,
        "ready": result.ready,
        "resources": {resource: kind.value for resource, kind in result.resources.items()},
        "withheld_kinds": [
            {"kind": kind.value, "reason": reason} for kind, reason in result.withheld_kinds.items()
        ],
        "source_problems": [
            {
                "adapter": problem.adapter,
                "source": problem.source,
                "detail": problem.detail,
                "stale": problem.stale,
            }
            for problem in result.source_problems
        ],
        "conflicts": [
            {
                "resource": conflict.resource,
                "adapters": list(conflict.adapters),
                "kinds": list(conflict.kinds),
                "message": conflict.message(),
            }
            for conflict in result.conflicts
        ],
        "errors": [],
        "warnings": [_problem_document(config.policy_path, item) for item in result.warnings],
    }


def error_document(error: ConfigError) -> dict[str, Any]:
    """Return an invalid config or policy as the JSON document of the check, in English."""
    return {
        "valid": False,
        "errors": [_problem_document(error.path, problem) for problem in error.problems],
        "warnings": [],
    }


def _problem_document(path: Path, problem: Problem) -> dict[str, Any]:
    document: dict[str, Any] = {
        "file": str(path),
        "line": problem.line,
        "key": problem.key,
        "message": problem.reason,
    }
    if isinstance(problem, PolicyWarning):
        document["code"] = problem.code
    if problem.variable is not None:
        document["variable"] = problem.variable
    return document


def _exit_errors() -> int:
    # Imported here because agent.cli imports this module to register the command.
    from agent.cli import EXIT_CONFIG_ERROR

    return EXIT_CONFIG_ERROR
