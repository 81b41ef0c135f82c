"""The 16 Polish voivodeships: the region of a member profile and of a search filter.

A code is the Polish name in lowercase ASCII (``slaskie`` for śląskie), as stored in
``member_profiles.voivodeship`` and sent as ``region=`` in a search URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from kooperant.i18n import Language


@dataclass(frozen=True, slots=True)
class Voivodeship:
    code: str
    pl: str
    en: str

    def name(self, language: Language) -> str:
        return self.pl if language == "pl" else self.en


VOIVODESHIPS = (
    Voivodeship("dolnoslaskie", "dolnośląskie", "Lower Silesian"),
    Voivodeship("kujawsko-pomorskie", "kujawsko-pomorskie", "Kuyavian-Pomeranian"),
    Voivodeship("lodzkie", "łódzkie", "Łódź"),
    Voivodeship("lubelskie", "lubelskie", "Lublin"),
    Voivodeship("lubuskie", "lubuskie", "Lubusz"),
    Voivodeship("malopolskie", "małopolskie", "Lesser Poland"),
    Voivodeship("mazowieckie", "mazowieckie", "Masovian"),
    Voivodeship("opolskie", "opolskie", "Opole"),
    Voivodeship("podkarpackie", "podkarpackie", "Subcarpathian"),
    Voivodeship("podlaskie", "podlaskie", "Podlaskie"),
    Voivodeship("pomorskie", "pomorskie", "Pomeranian"),
    Voivodeship("slaskie", "śląskie", "Silesian"),
    Voivodeship("swietokrzyskie", "świętokrzyskie", "Holy Cross"),
    Voivodeship("warminsko-mazurskie", "warmińsko-mazurskie", "Warmian-Masurian"),
    Voivodeship("wielkopolskie", "wielkopolskie", "Greater Poland"),
    Voivodeship("zachodniopomorskie", "zachodniopomorskie", "West Pomeranian"),
)
VOIVODESHIP_CODES = frozenset(voivodeship.code for voivodeship in VOIVODESHIPS)


def voivodeship_name(code: str | None, language: Language) -> str:
    """Return the name of voivodeship ``code`` in ``language``; an unknown code as it is."""
    for voivodeship in VOIVODESHIPS:
        if voivodeship.code == code:
            return voivodeship.name(language)
    return code or ""
