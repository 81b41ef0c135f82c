"""Tests of reading EDI++ files into supplies per item: documents, orders, folders, settings."""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from adapters.base import SupplyStock
from adapters.edi_epp import EdiEppSettings, read_epp_stock
from adapters.edi_epp.settings import DEFAULT_DOCUMENT_ROLES
from kooperant.protocol import Amount

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edi_epp"
DOCUMENTS = FIXTURES / "dokumenty.epp"
TEXT = DOCUMENTS.read_bytes().decode("cp1250")


def settings_for(path: Path, **overrides: object) -> EdiEppSettings:
    values: dict[str, object] = {"path": str(path)}
    values.update(overrides)
    return EdiEppSettings.model_validate(values)


def supply(
    resource: str,
    name: str | None,
    unit: str,
    stock: float,
    incoming: float,
    expected: float,
    suppliers: tuple[str, ...],
) -> SupplyStock:
    return SupplyStock(
        resource=resource,
        name=name,
        amounts=(
            Amount("stock", stock, unit),
            Amount("incoming", incoming, unit),
            Amount("expected_stock", expected, unit),
        ),
        suppliers=suppliers,
    )


# dokumenty.epp: PZ 1 (sheet +120, bolts +5000), PZ 2 (bearings +200), PZ 3 parked (status 0,
# resin 50 not counted), PW (resin +25), WZ (bolts -1200 written as 12 packs of 100, bearings
# -40, a service), RW booked (sheet -30), MMW from MAG to MAG2 (bearings 60), ZD open (sheet 80),
# ZD open (resin 40), ZD cancelled (bolts 10000), ZK open (sheet 50, bearings 20), FS and KP
# ignored.
EXPECTED_ALL = [
    supply("bl-dc01-1.5", "Blacha stalowa DC01 1,5 mm", "ark", 90, 80, 120, ("Stalprofil",)),
    supply("loz-6204-2rs", "Łożysko 6204-2RS", "szt", 160, 0, 140, ("Łożyska Kraśnik",)),
    supply("sr-m8x30-oc", "Śruba M8×30 ocynk", "szt", 3800, 0, 3800, ("Stalprofil",)),
    supply("zyw-epox", "Żywica epoksydowa", "kg", 25, 40, 65, ("Chemia Śląska",)),
]


def test_fixture_polish_letters_cp1250() -> None:
    # Guards the encoding tests: the fixture must hold letters that cp1250 and UTF-8 encode
    # differently, and must not be valid UTF-8.
    for letter in "ąęłóśźżŁŚŻ×":
        assert letter in TEXT
    with pytest.raises(UnicodeDecodeError):
        DOCUMENTS.read_bytes().decode("utf-8")


def test_documents_summed_per_item() -> None:
    supplies = read_epp_stock(DOCUMENTS, settings_for(DOCUMENTS))

    assert supplies == EXPECTED_ALL


def test_warehouse_filter_counts_transfer() -> None:
    supplies = read_epp_stock(DOCUMENTS, settings_for(DOCUMENTS, warehouses=["MAG"]))

    bearings = next(item for item in supplies if item.resource == "loz-6204-2rs")
    assert bearings.amounts[0] == Amount("stock", 100, "szt")
    assert bearings.amounts[2] == Amount("expected_stock", 80, "szt")


def test_target_warehouse_alone_receives_transfer() -> None:
    supplies = read_epp_stock(DOCUMENTS, settings_for(DOCUMENTS, warehouses=["MAG2"]))

    bearings = next(item for item in supplies if item.resource == "loz-6204-2rs")
    assert bearings.amounts[0] == Amount("stock", 60, "szt")


def test_order_statuses_configurable() -> None:
    # Counting status 2 as open too brings in the cancelled ZD of 10000 bolts.
    supplies = read_epp_stock(DOCUMENTS, settings_for(DOCUMENTS, open_order_statuses=[1, 2]))

    bolts = next(item for item in supplies if item.resource == "sr-m8x30-oc")
    assert bolts.amounts[1] == Amount("incoming", 10000, "szt")
    assert bolts.amounts[2] == Amount("expected_stock", 13800, "szt")


def test_parked_receipt_counted_when_configured() -> None:
    supplies = read_epp_stock(DOCUMENTS, settings_for(DOCUMENTS, stock_statuses=[0, 1, 3]))

    resin = next(item for item in supplies if item.resource == "zyw-epox")
    assert resin.amounts[0] == Amount("stock", 75, "kg")
    assert resin.suppliers == ("Chemia Śląska",)


def test_invoice_role_moves_stock() -> None:
    roles = dict(DEFAULT_DOCUMENT_ROLES)
    roles["fs"] = "issue"

    supplies = read_epp_stock(DOCUMENTS, settings_for(DOCUMENTS, document_roles=roles))

    bolts = next(item for item in supplies if item.resource == "sr-m8x30-oc")
    assert bolts.amounts[0] == Amount("stock", 0, "szt")


def test_documents_before_start_skipped() -> None:
    # From 2026-11-11 on: RW (-30 sheets) counts, PZ 1 (+120 on 2026-11-02) does not.
    supplies = read_epp_stock(DOCUMENTS, settings_for(DOCUMENTS, documents_from="2026-11-11"))

    sheet = next(item for item in supplies if item.resource == "bl-dc01-1.5")
    assert sheet.amounts[0] == Amount("stock", 0, "ark")
    # Orders do not depend on the date.
    assert sheet.amounts[1] == Amount("incoming", 80, "ark")


def test_opening_stock_added_per_warehouse() -> None:
    opening = FIXTURES / "stan_poczatkowy.csv"
    settings = settings_for(DOCUMENTS, warehouses=["MAG"], opening_stock={"path": str(opening)})

    supplies = read_epp_stock(DOCUMENTS, settings, opening)

    by_id = {item.resource: item for item in supplies}
    assert by_id["bl-dc01-1.5"].amounts[0] == Amount("stock", 130, "ark")
    # 15,5 bearings are in MAG2, which is not offered.
    assert by_id["loz-6204-2rs"].amounts[0] == Amount("stock", 100, "szt")
    assert by_id["klej-zyw-2"] == supply(
        "klej-zyw-2", "Klej żywiczny dwuskładnikowy", "kg", 12, 0, 12, ()
    )


def test_item_ids_mapped_by_setting() -> None:
    supplies = read_epp_stock(
        DOCUMENTS, settings_for(DOCUMENTS, items={"BL-DC01-1.5": "blacha-dc01-1-5mm"})
    )

    assert [item.resource for item in supplies][:2] == ["blacha-dc01-1-5mm", "loz-6204-2rs"]


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        pytest.param(TEXT.encode("cp1250"), "cp1250", id="cp1250"),
        pytest.param(codecs.BOM_UTF8 + TEXT.encode("utf-8"), "cp1250", id="bom-with-cp1250"),
        pytest.param(TEXT.encode("utf-8"), "auto", id="utf8-auto"),
        pytest.param(TEXT.encode("cp1250"), "auto", id="cp1250-auto"),
    ],
)
def test_same_supplies_in_accepted_encodings(tmp_path: Path, encoded: bytes, encoding: str) -> None:
    path = tmp_path / "dokumenty.epp"
    path.write_bytes(encoded)

    assert read_epp_stock(path, settings_for(path, encoding=encoding)) == EXPECTED_ALL


def test_folder_one_file_per_document(tmp_path: Path) -> None:
    folder = FIXTURES / "folder"

    supplies = read_epp_stock(folder, settings_for(folder))

    # PZ 1, WZ 1 and ZD 1 only; the folder has no item catalogue, so there are no names.
    assert supplies == [
        supply("bl-dc01-1.5", None, "ark", 120, 80, 200, ("Stalprofil",)),
        supply("loz-6204-2rs", None, "szt", 0, 0, 0, ()),
        supply("sr-m8x30-oc", None, "szt", 3800, 0, 3800, ("Stalprofil",)),
    ]


def test_folder_skips_other_and_temporary(tmp_path: Path) -> None:
    for source in (FIXTURES / "folder").iterdir():
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "notatki.txt").write_text("nie EDI++", encoding="utf-8")
    (tmp_path / "ZD_9-11-2026.epp.part").write_bytes(b'[INFO]\r\n"1.05",3,1250,"Subiekt')

    supplies = read_epp_stock(tmp_path, settings_for(tmp_path))

    assert supplies == read_epp_stock(FIXTURES / "folder", settings_for(tmp_path))


def test_settings_reject_unknown_role() -> None:
    with pytest.raises(ValidationError) as raised:
        settings_for(DOCUMENTS, document_roles={"PZ": "przyjęcie"})

    assert "document_roles.PZ" in str(raised.value)


def test_settings_reject_unknown_key() -> None:
    with pytest.raises(ValidationError) as raised:
        settings_for(DOCUMENTS, warehouse="MAG")

    assert "warehouse" in str(raised.value)


def test_settings_reject_position_zero() -> None:
    with pytest.raises(ValidationError) as raised:
        settings_for(DOCUMENTS, fields={"position": {"quantity": 0}})

    assert "fields.position.quantity" in str(raised.value)


def test_example_config_valid() -> None:
    example = FIXTURES.parents[2] / "config" / "adapters" / "edi_epp.example.yaml"
    [entry] = yaml.safe_load(example.read_text(encoding="utf-8"))
    values = {key: value for key, value in entry.items() if key not in ("type", "name")}

    settings = EdiEppSettings.model_validate(values)

    assert entry["type"] == "edi_epp"
    assert settings.path == Path("exports/subiekt")
    assert settings.document_roles["PZ"] == "receipt"
    assert settings.opening_stock is not None
