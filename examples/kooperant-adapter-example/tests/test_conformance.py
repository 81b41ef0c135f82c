"""The example adapter passes kooperant's conformance kit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kooperant_example_adapter import SiloLevelAdapter

from adapters.base import Observation, ResourceAmounts
from kooperant.adapter_kit import AdapterCase, AdapterConformanceTests


def gateway_file() -> str:
    # Written when the test module is imported, so it is well within max_age_seconds.
    return json.dumps(
        {
            "written_at": datetime.now(UTC).isoformat(),
            "readings": [
                {"tag": "SILO_1.LEVEL", "value": 12.5, "unit": "m3"},
                {"tag": "SILO_2.LEVEL", "value": 40.0, "unit": "m3"},
            ],
        }
    )


def silos_reported(observations: list[Observation]) -> bool:
    free = {
        item.resource: item.amounts[0].value
        for item in observations
        if isinstance(item, ResourceAmounts)
    }
    return free == {"silo-1": 27.5, "silo-2": 0.0}


class TestSiloLevelConformance(AdapterConformanceTests):
    case = AdapterCase(
        adapter_class=SiloLevelAdapter,
        settings={
            "path": "gateway/levels.json",
            "poll_interval_seconds": 0.1,
            "silos": [
                {"tag": "SILO_1.LEVEL", "resource": "silo-1", "capacity_m3": 40},
                {"tag": "SILO_2.LEVEL", "resource": "silo-2", "capacity_m3": 35},
            ],
        },
        files={"gateway/levels.json": gateway_file()},
        expect=silos_reported,
    )
