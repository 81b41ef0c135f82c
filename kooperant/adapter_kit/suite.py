"""Run every conformance check on one case: as a plain function, or as a pytest test class."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import ClassVar

from kooperant.adapter_kit.case import AdapterCase
from kooperant.adapter_kit.life_cycle import (
    check_construction,
    check_life_cycle,
    check_stop_after_failed_start,
    check_stop_without_start,
)
from kooperant.adapter_kit.values import check_settings


def run_conformance(case: AdapterCase, work_dir: Path | None = None) -> None:
    """Run every check on ``case``, each on a new event loop; raise on the first broken rule.

    Without ``work_dir`` the checks work in a temporary folder that is deleted afterwards.
    """
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="kooperant-adapter-kit-") as folder:
            run_conformance(case, Path(folder))
        return

    check_settings(case.adapter_class, case.settings)
    asyncio.run(check_construction(case, work_dir))
    asyncio.run(check_life_cycle(case, work_dir))
    asyncio.run(check_life_cycle(case, work_dir, with_files=False))
    asyncio.run(check_stop_without_start(case, work_dir))
    asyncio.run(check_stop_after_failed_start(case, work_dir))


class AdapterConformanceTests:
    """Base of a pytest test class that runs the kit on ``case``, one test per check.

    Subclass it under a name pytest collects and set ``case``::

        class TestMeterAdapter(AdapterConformanceTests):
            case = AdapterCase(adapter_class=MeterAdapter, settings={"path": "meter.json"})

    The tests are synchronous and start their own event loops, so pytest-asyncio is not needed.
    Their only use of pytest is the ``tmp_path`` fixture.
    """

    case: ClassVar[AdapterCase]

    def test_settings_model_conforms(self) -> None:
        check_settings(self.case.adapter_class, self.case.settings)

    def test_init_does_no_io(self, tmp_path: Path) -> None:
        asyncio.run(check_construction(self.case, tmp_path))

    def test_life_cycle_conforms(self, tmp_path: Path) -> None:
        asyncio.run(check_life_cycle(self.case, tmp_path))

    def test_start_without_source_files(self, tmp_path: Path) -> None:
        asyncio.run(check_life_cycle(self.case, tmp_path, with_files=False))

    def test_stop_without_start(self, tmp_path: Path) -> None:
        asyncio.run(check_stop_without_start(self.case, tmp_path))

    def test_stop_after_failed_start(self, tmp_path: Path) -> None:
        asyncio.run(check_stop_after_failed_start(self.case, tmp_path))
