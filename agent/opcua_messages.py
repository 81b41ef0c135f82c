"""Messages shared by the commands that connect to an OPC UA server (``browse``, ``trust``).

Each command builds its ``Catalog`` from these entries and its own, so an unreachable server or a
bad ``--timeout`` reads the same in both.
"""

from __future__ import annotations

from collections.abc import Mapping

from kooperant.i18n import Language

OPCUA_CLIENT_MESSAGES: Mapping[str, Mapping[Language, str]] = {
    "url.help": {
        "pl": "Adres serwera, np. opc.tcp://192.168.1.20:4840.",
        "en": "Server endpoint, e.g. opc.tcp://192.168.1.20:4840.",
    },
    "timeout.invalid": {
        "pl": "Błędna wartość --timeout: {value}. Podaj liczbę sekund większą od 0 i nie "
        "większą niż 3600, np. --timeout 10.",
        "en": "Invalid value for --timeout: {value}. Give a number of seconds greater than "
        "0 and at most 3600, e.g. --timeout 10.",
    },
    "error.invalid_url": {
        "pl": "Błędny adres {url}: podaj adres serwera OPC UA w postaci opc.tcp://HOST:PORT, "
        "bez nazwy użytkownika i hasła, np. opc.tcp://192.168.1.20:4840.",
        "en": "Invalid URL {url}: give an OPC UA endpoint as opc.tcp://HOST:PORT, without a "
        "user name or password, e.g. opc.tcp://192.168.1.20:4840.",
    },
    "error.unreachable": {
        "pl": "Nie można połączyć się z {url} ({detail}). Sprawdź host i port, czy serwer "
        "OPC UA działa i czy zapora przepuszcza ten port.",
        "en": "Cannot connect to {url} ({detail}). Check the host and port, that the OPC UA "
        "server runs and that a firewall lets the port through.",
    },
    "error.timeout": {
        "pl": "Serwer {url} nie odpowiedział w ciągu {seconds} s. Sprawdź, czy pod tym "
        "adresem działa serwer OPC UA, albo zwiększ --timeout.",
        "en": "Server {url} did not respond within {seconds} s. Check that an OPC UA server "
        "listens at this address, or increase --timeout.",
    },
}
