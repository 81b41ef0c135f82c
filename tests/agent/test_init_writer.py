"""``agent.config_writer``: YAML quoting, atomic writes and the files for unusual answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import load_config
from agent.config_writer import TargetExistsError, render_config, write_files, yaml_scalar
from agent.init_answers import (
    EXPORT_TYPES_BY_NAME,
    ExportSource,
    InitAnswers,
    Machine,
    OpcUaServer,
    parse_export,
    unique_id,
)


@pytest.mark.parametrize(
    "text",
    [
        "plain-id",
        "C:\\Eksport\\plan produkcji.csv",
        "\\\\nas\\skany",
        "yes",
        "12:30",
        "1e3",
        'Frezarka "DMU": 5 osi',
        "#hash",
        "Łódź – hala A",
    ],
)
def test_yaml_scalar_loads_back_unchanged(text: str) -> None:
    assert yaml.safe_load(f"key: {yaml_scalar(text)}") == {"key": text}


def answers(folder: Path, **changes: object) -> InitAnswers:
    values: dict[str, object] = {
        "member": "acme",
        "cluster": "c1",
        "broker_url": "mqtt://127.0.0.1:1883",
        "output": folder,
    }
    values.update(changes)
    return InitAnswers(**values)  # type: ignore[arg-type]


def test_config_with_odd_machine_names_loads(tmp_path: Path) -> None:
    machines = (
        Machine('Presse "A": 1', "presse-a-1", 'Presse "A": 1'),
        Machine("yes", "yes", "yes"),
    )
    server = OpcUaServer("opc.tcp://127.0.0.1:4840", machines, browsed=True)
    stock = ExportSource(EXPORT_TYPES_BY_NAME["stock"], Path("C:\\Eksport\\stany #1.csv"))

    write_files(answers(tmp_path, servers=(server,), exports=(stock,)), force=False)

    config = load_config(tmp_path / "agent.yaml")
    opcua, stock_adapter = yaml.safe_load((tmp_path / "agent.yaml").read_text("utf-8"))["adapters"]
    assert opcua["machines"] == {'Presse "A": 1': "presse-a-1", "yes": "yes"}
    assert stock_adapter["path"] == "C:\\Eksport\\stany #1.csv"
    assert config.resources["presse-a-1"].name == 'Presse "A": 1'


def test_unbrowsed_server_written_without_machines(tmp_path: Path) -> None:
    server = OpcUaServer("opc.tcp://127.0.0.1:4840", (), browsed=False)

    text = render_config(answers(tmp_path, servers=(server,)))

    adapter = yaml.safe_load(text)["adapters"][0]
    assert adapter == {
        "type": "opcua",
        "name": "opcua-127.0.0.1",
        "url": "opc.tcp://127.0.0.1:4840",
        "machines": {},
    }
    assert "Not browsed during setup" in text


def test_two_servers_on_one_host_get_distinct_names(tmp_path: Path) -> None:
    servers = tuple(
        OpcUaServer(f"opc.tcp://127.0.0.1:{port}", (), browsed=False) for port in (4840, 4841)
    )

    adapters = yaml.safe_load(render_config(answers(tmp_path, servers=servers)))["adapters"]

    assert [adapter["name"] for adapter in adapters] == ["opcua-127.0.0.1", "opcua-127.0.0.1-2"]


def test_unique_id_adds_suffix() -> None:
    used_ids = {"lathe", "lathe-2"}

    assert unique_id("lathe", used_ids) == "lathe-3"
    assert unique_id("mill", used_ids) == "mill"
    assert {"lathe-3", "mill"} <= used_ids


def test_parse_export_makes_path_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    export, path = parse_export("warehouse=exports/lokalizacje.csv")

    assert export.type == "warehouse"
    assert path == tmp_path / "exports" / "lokalizacje.csv"


def test_existing_password_file_blocks_write(tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "broker-password"
    secret.parent.mkdir()
    secret.write_text("old", encoding="utf-8")
    given = answers(tmp_path, broker_username="agent", broker_password="new")

    with pytest.raises(TargetExistsError) as raised:
        write_files(given, force=False)

    assert raised.value.path == secret
    assert secret.read_text("utf-8") == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secrets"]


def test_failed_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    # A folder in place of agent.yaml makes the final rename fail.
    (tmp_path / "agent.yaml").mkdir()

    with pytest.raises(OSError):
        write_files(answers(tmp_path), force=True)

    leftovers = [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]
    assert leftovers == []
    assert (tmp_path / "agent.yaml").is_dir()


def test_password_not_in_repr(tmp_path: Path) -> None:
    given = answers(tmp_path, broker_username="agent", broker_password="s3cret")

    assert "s3cret" not in repr(given)
