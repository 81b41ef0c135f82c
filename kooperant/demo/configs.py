"""Location of the example configs of ``config/``, in a source tree or in an installed wheel."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# A wheel installs config/ as the data-only package ``kooperant.example_configs`` (see
# pyproject.toml); an editable install or a source checkout reads the folder itself.
_SOURCE_TREE_CONFIGS = Path(__file__).resolve().parents[2] / "config"


def example_config(*parts: str) -> Path:
    """Return the path of a file below ``config/``: ``example_config("demo", "agent.yaml")``."""
    if _SOURCE_TREE_CONFIGS.is_dir():
        return _SOURCE_TREE_CONFIGS.joinpath(*parts)
    installed = files("kooperant.example_configs")
    for part in parts:  # Python 3.11 joins a namespace package's path one part at a time
        installed = installed.joinpath(part)
    return Path(str(installed))
