"""The wheel ships every module and data file, including config/ as example_configs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CODE_PACKAGES = ("adapters", "agent", "kooperant", "server")
DATA_SUFFIXES = {".json", ".html", ".css", ".mako", ".yaml", ".po"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(output)]
    subprocess.run([*command, str(REPO_ROOT)], check=True, capture_output=True)
    [built] = output.glob("kooperant-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def source_files(folder: str, suffixes: set[str]) -> list[str]:
    return sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / folder).rglob("*")
        if path.suffix in suffixes and "__pycache__" not in path.parts
    )


@pytest.mark.parametrize("package", CODE_PACKAGES)
def test_wheel_contains_every_module_and_data_file(package: str, wheel_names: set[str]) -> None:
    expected = source_files(package, {".py"} | DATA_SUFFIXES)

    missing = [name for name in expected if name not in wheel_names]

    assert expected
    assert missing == []


def test_wheel_ships_config_as_example_configs(wheel_names: set[str]) -> None:
    expected = [
        "kooperant/example_configs/" + Path(name).relative_to("config").as_posix()
        for name in source_files("config", {".yaml"})
    ]

    missing = [name for name in expected if name not in wheel_names]

    assert "kooperant/example_configs/demo/agent.yaml" in expected
    assert missing == []


def test_installed_wheel_finds_demo_config(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    script = (
        "from kooperant.demo.configs import example_config;"
        "print(example_config('demo', 'agent.yaml').read_text())"
    )

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "member: demo-metal" in result.stdout
