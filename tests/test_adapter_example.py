"""The example adapter package installs as a distribution of its own and is listed as such.

The package is installed with pip into a temporary folder from a copy of its source, so the
check does not depend on whether ``scripts/test`` installed it into the venv, and the source
tree gets no build files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "kooperant-adapter-example"


def test_example_package_is_listed_with_own_version(tmp_path: Path) -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    source = tmp_path / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site-packages"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*install, "--target", str(target), str(source)], check=True)

    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), str(REPO_ROOT)]),
        "KOOPERANT_LANG": "en",
    }
    result = subprocess.run(
        [sys.executable, "-m", "kooperant", "adapter", "list", "--json"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )

    entries = {entry["type"]: entry for entry in json.loads(result.stdout)["adapters"]}
    assert result.returncode == 0, result.stderr
    assert entries["example_silo"] == {
        "type": "example_silo",
        "package": project["name"],
        "version": project["version"],
        "class": "kooperant_example_adapter:SiloLevelAdapter",
        "description": (
            "Offer the free volume of silos whose levels a PLC gateway writes to a JSON file."
        ),
        "error": None,
    }
    assert entries["host"]["package"] == "kooperant"
