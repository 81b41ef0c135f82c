"""``kooperant adapter``: inspect the adapter types installed through entry points.

``kooperant adapter list`` shows each type registered in the ``kooperant.adapters`` entry point
group with its package, version, class and the first line of its docstring, which stays English
like all developer text. An entry point that cannot be loaded is listed with its error, and the
command then exits with 1.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from adapters.registry import ENTRY_POINT_GROUP, AdapterEntry, describe_adapters
from kooperant.i18n import Catalog

EXIT_BROKEN_ENTRY = 1

_ = Catalog.for_module(__name__)

app = typer.Typer(help=_("help"), no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def adapter_options() -> None:
    """Keep ``list`` a sub-command even while it is the only one."""


@app.command(name="list", help=_("list.help"))
def list_adapters(
    as_json: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
) -> None:
    entries = describe_adapters()
    if as_json:
        document = {"group": ENTRY_POINT_GROUP, "adapters": [_to_json(entry) for entry in entries]}
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    elif entries:
        typer.echo(render_entries(entries))
    else:
        typer.echo(_("none", group=ENTRY_POINT_GROUP))

    broken = [entry for entry in entries if entry.error is not None]
    if not as_json:
        for entry in broken:
            message = _(
                "broken",
                name=entry.name,
                path=entry.class_path,
                package=entry.package or "-",
                error=entry.error,
            )
            typer.echo(message, err=True)
    if broken:
        raise typer.Exit(EXIT_BROKEN_ENTRY)


def render_entries(entries: list[AdapterEntry]) -> str:
    """Return ``entries`` as a text table with a header row."""
    rows = [_("columns").split("|")]
    for entry in entries:
        description = entry.description or "-"
        if entry.error is not None:
            description = _("not_loaded")
        rows.append(
            [entry.name, entry.package or "-", entry.version or "-", entry.class_path, description]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _to_json(entry: AdapterEntry) -> dict[str, str | None]:
    return {
        "type": entry.name,
        "package": entry.package,
        "version": entry.version,
        "class": entry.class_path,
        "description": entry.description,
        "error": entry.error,
    }
