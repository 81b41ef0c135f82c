"""Source errors that adapters report in English, worded in the user's language.

An adapter sets ``SourceHealth.detail`` to an English text for logs and the JSON status, and for
common errors also ``detail_code`` and ``detail_values``. ``source_detail_text`` returns the
catalogue text for a known code, and the English detail for any other error.

Codes of the export adapters (``adapters/exports``), with their values:

- ``export.missing``: the configured file does not exist (``path``);
- ``export.input_missing``: another input file of the adapter does not exist (``path``);
- ``export.no_match``: no file in the folder matches the pattern (``path``, ``pattern``);
- ``export.name_too_long``: the path is too long for the file system (``path``);
- ``export.permission_denied``: the agent's user may not read the path (``path``);
- ``export.unreadable``: another error of the operating system (``path``, ``reason``).
"""

from __future__ import annotations

from collections.abc import Mapping

from kooperant.i18n import Catalog

_ = Catalog.for_module(__name__)


def source_detail_text(
    detail: str | None, code: str | None, values: Mapping[str, str]
) -> str | None:
    """Return the catalogue text for ``code`` with ``values``, else ``detail`` unchanged."""
    if code is None or code not in _.ids():
        return detail
    return _(code, None, **values)
