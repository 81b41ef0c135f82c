"""The ``edi_epp`` adapter: supplies from EDI++ (.epp) exports of InsERT Subiekt and others."""

from adapters.edi_epp.adapter import EdiEppAdapter, read_epp_stock
from adapters.edi_epp.settings import EdiEppSettings

__all__ = ["EdiEppAdapter", "EdiEppSettings", "read_epp_stock"]
