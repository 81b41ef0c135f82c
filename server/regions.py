"""The 16 Polish voivodeships, the regions a member profile names and a search filters by.

The codes are the lowercase Polish names without diacritics, as stored in
``member_profiles.voivodeship``.
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
    Voivodeship("lubelskie", "lubelskie", "Lublin"),
    Voivodeship("lubuskie", "lubuskie", "Lubusz"),
    Voivodeship("lodzkie", "łódzkie", "Łódź"),
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


def voivodeship_name(code: str, language: Language) -> str:
    """Return the name of the voivodeship ``code`` in ``language``, or ``code`` if unknown."""
    for voivodeship in VOIVODESHIPS:
        if voivodeship.code == code:
            return voivodeship.name(language)
    return code
