"""The ``jpk_mag`` adapter: stock of supplies from a JPK_MAG(1) file of the Ministry of Finance.

``adapter`` (the adapter), ``settings``, ``schema`` (the element names read), ``xml_records``
(defused, streamed XML), ``movements`` (document lines as stock changes) and ``stock`` (balances
and observations).
"""

from adapters.jpk_mag.adapter import JpkMagAdapter
from adapters.jpk_mag.movements import JpkHeader, JpkMagReader, Movement
from adapters.jpk_mag.settings import JpkMagSettings, OpeningStockColumns, OpeningStockSettings

__all__ = [
    "JpkHeader",
    "JpkMagAdapter",
    "JpkMagReader",
    "JpkMagSettings",
    "Movement",
    "OpeningStockColumns",
    "OpeningStockSettings",
]
