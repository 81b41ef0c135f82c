"""Element names of the JPK_MAG(1) schema that the adapter reads, and the version check.

The names follow the Ministry of Finance schema ``Schemat_JPK_MAG(1)_v1-0.xsd``, target namespace
``http://jpk.mf.gov.pl/wzor/2016/03/09/03093/``, ``KodFormularza kodSystemowy="JPK_MAG (1)"``,
``WariantFormularza`` 1. Each document kind has a value record (``PZWartosc``: number, date,
supplier) and line records (``PZWiersz``) that point back to it by number (``Numer2PZ``), and
a control record (``PZCtrl``) that counts its documents. All value records precede the lines.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE_V1 = "http://jpk.mf.gov.pl/wzor/2016/03/09/03093/"
SYSTEM_CODE_V1 = "JPK_MAG (1)"
FORM_CODE = "JPK_MAG"
VARIANT_V1 = "1"


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """One kind of warehouse document and the names of the elements read from it.

    ``sign`` is +1 when its lines add to the stock of the file's warehouse and -1 when they
    remove from it. Transfers (MM) are -1 unless the document names this warehouse as the
    destination; see ``adapters.jpk_mag.movements``.
    """

    code: str
    description: str
    quantity: str
    sign: int
    counterparty: str | None = None

    @property
    def value_record(self) -> str:
        return f"{self.code}Wartosc"

    @property
    def line_record(self) -> str:
        return f"{self.code}Wiersz"

    @property
    def control_record(self) -> str:
        return f"{self.code}Ctrl"

    @property
    def number(self) -> str:
        return f"Numer{self.code}"

    @property
    def date(self) -> str:
        return f"Data{self.code}"

    @property
    def line_number(self) -> str:
        """The element of a line that contains the number of its document."""
        return f"Numer2{self.code}"

    @property
    def item_code(self) -> str:
        return f"KodTowaru{self.code}"

    @property
    def item_name(self) -> str:
        return f"NazwaTowaru{self.code}"

    @property
    def unit(self) -> str:
        return f"JednostkaMiary{self.code}"

    @property
    def unit_price(self) -> str:
        return f"CenaJedn{self.code}"

    @property
    def count(self) -> str:
        """The element of the control record that contains the number of documents."""
        return f"Liczba{self.code}"


RECEIPT = DocumentKind("PZ", "receipt", "IloscPrzyjetaPZ", +1, counterparty="Dostawca")
EXTERNAL_ISSUE = DocumentKind("WZ", "external issue", "IloscWydanaWZ", -1)
INTERNAL_ISSUE = DocumentKind("RW", "internal issue", "IloscWydanaRW", -1)
TRANSFER = DocumentKind("MM", "transfer", "IloscWydanaMM", -1)
DOCUMENT_KINDS = {kind.code: kind for kind in (RECEIPT, EXTERNAL_ISSUE, INTERNAL_ISSUE, TRANSFER)}
TRANSFER_SOURCE = "SkadMM"
TRANSFER_DESTINATION = "DokadMM"
