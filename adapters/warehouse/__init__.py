"""The ``warehouse`` adapter: free pallet places and floor area from a storage locations export.

``settings`` contains the settings model and the storage type words, ``locations`` the parser of the
export's rows and ``adapter`` the ``ExportAdapter`` subclass that follows the export.
"""

from adapters.warehouse.adapter import WarehouseAdapter
from adapters.warehouse.locations import LocationsReport, locations_from_rows, read_locations
from adapters.warehouse.settings import (
    DEFAULT_STORAGE_TYPE_WORDS,
    STORAGE_TYPES,
    StorageReserve,
    StorageType,
    WarehouseColumns,
    WarehouseSettings,
)

__all__ = [
    "DEFAULT_STORAGE_TYPE_WORDS",
    "STORAGE_TYPES",
    "LocationsReport",
    "StorageReserve",
    "StorageType",
    "WarehouseAdapter",
    "WarehouseColumns",
    "WarehouseSettings",
    "locations_from_rows",
    "read_locations",
]
