"""Resource ids made from the codes ERP systems use for machines, warehouses and items."""

from __future__ import annotations

import re
import unicodedata


def slugify_code(code: str) -> str:
    """Turn an ERP code into a resource id: ``FREZ 01/Ł`` becomes ``frez-01-l``.

    Returns an empty string when nothing usable is left.
    """
    ascii_text = unicodedata.normalize("NFKD", code.replace("ł", "l").replace("Ł", "L"))
    ascii_text = ascii_text.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9_.-]+", "-", ascii_text)
    slug = re.sub(r"^[^a-z0-9]+", "", slug)
    return slug[:64].rstrip("-")
