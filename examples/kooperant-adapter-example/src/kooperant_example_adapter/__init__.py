"""An example kooperant adapter, ``example_silo``, built only on kooperant's public API.

It offers the free volume of silos as storage, from the JSON file in which a PLC gateway writes
the current fill levels. Integrators copy its shape: a settings model (``settings``), a pure
parser that names the file and element of every problem (``readings``), the adapter with its
background task (``adapter``), the entry point in ``pyproject.toml`` and tests that run the
conformance kit.
"""

from kooperant_example_adapter.adapter import SiloLevelAdapter
from kooperant_example_adapter.readings import GatewayReadings, parse_readings
from kooperant_example_adapter.settings import Silo, SiloSettings

__all__ = ["GatewayReadings", "Silo", "SiloLevelAdapter", "SiloSettings", "parse_readings"]
