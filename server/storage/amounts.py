"""Rows of ``resource_amounts``: the amounts of each current offer, searchable by minimum value.

The current offer's writes (``current.py``) insert these rows. The migration that created the
table uses ``amount_rows`` to fill it from the payloads of offers stored before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ResourceKey = tuple[str, str, str]


def amount_rows(key: ResourceKey, amounts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the ``resource_amounts`` rows of ``amounts`` (JSON form, as in the payload)."""
    rows = []
    for position, amount in enumerate(amounts):
        band = amount.get("band")
        value = amount.get("value")
        rows.append(
            {
                "cluster": key[0],
                "member": key[1],
                "resource": key[2],
                "position": position,
                "quantity": str(amount["quantity"]),
                "unit": str(amount["unit"]),
                "label": amount.get("label"),
                "value": float(value) if value is not None else None,
                "band_min": float(band["min"]) if band is not None else None,
                "band_max": (
                    float(band["max"]) if band is not None and band.get("max") is not None else None
                ),
            }
        )
    return rows
