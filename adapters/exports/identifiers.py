"""Resource ids made from the codes ERP systems use for machines, warehouses and items."""

from __future__ import annotations

import re
import unicodedata

from kooperant.protocol import IDENTIFIER_PATTERN

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def slugify_code(code: str) -> str:
    """Turn an ERP code into a resource id: ``FREZ 01/Ł`` becomes ``frez-01-l``.

    Returns an empty string when nothing usable is left.
    """
    ascii_text = unicodedata.normalize("NFKD", code.replace("ł", "l").replace("Ł", "L"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9_.-]+", "-", ascii_text)
    slug = re.sub(r"^[^a-z0-9]+", "", slug)
    return slug[:64].rstrip("-")


def check_resource_map(value: dict[str, str], code_kind: str) -> dict[str, str]:
    """Check a settings map of ERP code to resource id; return it with the codes stripped.

    ``code_kind`` names a code in the error, e.g. "item" or "machine". Raises ``ValueError`` for the
    first id that is not valid.
    """
    for code, resource in value.items():
        if not _IDENTIFIER.fullmatch(resource):
            raise ValueError(
                f"{code_kind} {code!r} maps to {resource!r}, which is not a valid resource id: "
                "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
    return {code.strip(): resource for code, resource in value.items()}
