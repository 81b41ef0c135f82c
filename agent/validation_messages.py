"""Problem reasons for the agent config and the policy file, in Polish and English.

``MESSAGES`` contains the reasons that ``agent.yamlfile``, ``agent.reasons``, ``agent.config`` and
``agent.policy`` put into a ``Problem``: unreadable files, YAML syntax errors, pydantic validation
errors, invalid ids and the checks of the config and the policy file. A reason is worded in the
current language when the ``Problem`` is built.
"""

from __future__ import annotations

from kooperant.i18n import Catalog

MESSAGES = Catalog(
    {
        # Reading the file (agent.yamlfile)
        "file.not_found": {
            "pl": "nie ma takiego pliku; sprawdź ścieżkę",
            "en": "file not found; check the path",
        },
        "file.unreadable": {
            "pl": "nie można odczytać pliku ({detail}); sprawdź ścieżkę i uprawnienia",
            "en": "cannot read the file ({detail}); check the path and its permissions",
        },
        "file.not_utf8": {
            "pl": "plik nie jest tekstem UTF-8 (bajt {position}); zapisz go w UTF-8",
            "en": "the file is not UTF-8 text (byte {position}); save it as UTF-8",
        },
        "key.duplicate": {
            "pl": "powtórzony klucz; zostaw tylko jeden z wpisów",
            "en": "duplicate key; keep only one of its entries",
        },
        "variable.unset": {
            "pl": "zmienna {name} nie jest ustawiona; ustaw ją w środowisku albo podaj wartość "
            "domyślną jako ${{{name}:-WARTOŚĆ}}",
            "en": "variable {name} is not set; set it in the environment or give a default as "
            "${{{name}:-VALUE}}",
        },
        # YAML syntax (agent.reasons). The English text keeps PyYAML's own detail.
        "yaml.invalid": {
            "pl": "nieprawidłowy YAML: {detail}",
            "en": "invalid YAML: {detail}",
        },
        "yaml.invalid_date": {
            "pl": "nieprawidłowa data {value!r}: taka data nie istnieje w kalendarzu; popraw dzień "
            "lub miesiąc (zapis RRRR-MM-DD)",
            "en": "invalid YAML: invalid date {value!r} ({error})",
        },
        "yaml.indentation": {
            "pl": "nieprawidłowy YAML: wcięcie tego wiersza nie pasuje do wierszy powyżej; "
            "klucze i elementy listy tego samego poziomu wyrównaj tą samą liczbą spacji",
            "en": "invalid YAML: {detail}",
        },
        "yaml.colon": {
            "pl": "nieprawidłowy YAML: dwukropek w niedozwolonym miejscu; sprawdź wcięcie, "
            "a wartość zawierającą „: ” ujmij w cudzysłów",
            "en": "invalid YAML: {detail}",
        },
        "yaml.missing_colon": {
            "pl": "nieprawidłowy YAML: po kluczu z wiersza {start_line} brakuje dwukropka; "
            "zapisz wpis jako „klucz: wartość”",
            "en": "invalid YAML: {detail}",
        },
        "yaml.tab": {
            "pl": "nieprawidłowy YAML: znak tabulacji; do wcięć używaj spacji",
            "en": "invalid YAML: {detail}",
        },
        "yaml.bad_start": {
            "pl": "nieprawidłowy YAML: wartość nie może zaczynać się znakiem {character}; "
            "ujmij ją w cudzysłów",
            "en": "invalid YAML: {detail}",
        },
        "yaml.unclosed_list": {
            "pl": "nieprawidłowy YAML: w liście „[ ]” z wiersza {start_line} brakuje przecinka "
            "albo zamykającego „]”",
            "en": "invalid YAML: {detail}",
        },
        "yaml.unclosed_mapping": {
            "pl": "nieprawidłowy YAML: w słowniku „{{ }}” z wiersza {start_line} brakuje przecinka "
            "albo zamykającego „}}”",
            "en": "invalid YAML: {detail}",
        },
        "yaml.unclosed_quote": {
            "pl": "nieprawidłowy YAML: cudzysłów otwarty w wierszu {start_line} nie jest zamknięty",
            "en": "invalid YAML: {detail}",
        },
        "yaml.escape": {
            "pl": "nieprawidłowy YAML: nieznana sekwencja „\\{character}” w tekście w podwójnym "
            "cudzysłowie; użyj pojedynczego cudzysłowu albo zapisz ukośnik jako „\\\\”",
            "en": "invalid YAML: {detail}",
        },
        "yaml.undefined_alias": {
            "pl": "nieprawidłowy YAML: nieznany alias *{name}; najpierw zdefiniuj kotwicę &{name}",
            "en": "invalid YAML: {detail}",
        },
        "yaml.duplicate_anchor": {
            "pl": "nieprawidłowy YAML: kotwica &{name} jest już zdefiniowana w wierszu "
            "{start_line}",
            "en": "invalid YAML: {detail}",
        },
        "yaml.many_documents": {
            "pl": "nieprawidłowy YAML: plik zawiera więcej niż jeden dokument (separator „---”); "
            "zostaw jeden",
            "en": "invalid YAML: {detail}",
        },
        # Pydantic errors (agent.reasons)
        "value.missing": {
            "pl": "brak wymaganego klucza; dodaj go",
            "en": "missing required key; add it",
        },
        "value.unknown_key": {
            "pl": "nieznany klucz; usuń go albo popraw pisownię",
            "en": "unknown key; remove it or correct its spelling",
        },
        "value.one_of": {
            "pl": "dozwolone wartości: {expected}{given}",
            "en": "input should be {expected}{given}",
        },
        "value.string": {
            "pl": "oczekiwano tekstu{given}",
            "en": "input should be a valid string{given}",
        },
        "value.integer": {
            "pl": "oczekiwano liczby całkowitej{given}",
            "en": "input should be a valid integer{given}",
        },
        "value.number": {
            "pl": "oczekiwano liczby{given}",
            "en": "input should be a valid number{given}",
        },
        "value.finite_number": {
            "pl": "oczekiwano skończonej liczby{given}",
            "en": "input should be a finite number{given}",
        },
        "value.boolean": {
            "pl": "oczekiwano true albo false{given}",
            "en": "input should be true or false{given}",
        },
        "value.greater_than": {
            "pl": "wartość musi być większa niż {limit}{given}",
            "en": "input should be greater than {limit}{given}",
        },
        "value.greater_than_equal": {
            "pl": "wartość musi wynosić co najmniej {limit}{given}",
            "en": "input should be greater than or equal to {limit}{given}",
        },
        "value.less_than": {
            "pl": "wartość musi być mniejsza niż {limit}{given}",
            "en": "input should be less than {limit}{given}",
        },
        "value.less_than_equal": {
            "pl": "wartość może wynosić najwyżej {limit}{given}",
            "en": "input should be less than or equal to {limit}{given}",
        },
        "value.too_short": {
            "pl": "{container} musi mieć co najmniej {minimum}{size}",
            "en": "{container} must have at least {minimum}{size}",
        },
        "value.too_long": {
            "pl": "{container} może mieć najwyżej {maximum}{size}",
            "en": "{container} must have at most {maximum}{size}",
        },
        "value.string_too_short": {
            "pl": "tekst musi mieć co najmniej {minimum}{given}",
            "en": "string should have at least {minimum}{given}",
        },
        "value.string_too_long": {
            "pl": "tekst może mieć najwyżej {maximum} (podano {length})",
            "en": "string should have at most {maximum}, got {length}",
        },
        "value.pattern": {
            "pl": "tekst nie pasuje do wzorca '{pattern}'{given}",
            "en": "string should match pattern '{pattern}'{given}",
        },
        "value.url": {
            "pl": "oczekiwano poprawnego adresu URL{given}",
            "en": "input should be a valid URL{detail}{given}",
        },
        "value.url_scheme": {
            "pl": "dozwolone schematy adresu URL: {expected}{given}",
            "en": "URL scheme should be {expected}{given}",
        },
        "value.url_too_long": {
            "pl": "adres URL może mieć najwyżej {maximum}{given}",
            "en": "URL should have at most {maximum}{given}",
        },
        "value.date": {
            "pl": "oczekiwano istniejącej daty w zapisie RRRR-MM-DD, np. 2027-01-31{given}",
            "en": "input should be a valid date such as 2027-01-31{detail}{given}",
        },
        "value.datetime": {
            "pl": "oczekiwano daty z godziną, np. 2027-01-31T18:00:00+01:00{given}",
            "en": "input should be a valid date and time such as 2027-01-31T18:00:00+01:00"
            "{detail}{given}",
        },
        "value.time": {
            "pl": "oczekiwano godziny w zapisie GG:MM, np. 14:30{given}",
            "en": "input should be a valid time such as 14:30{detail}{given}",
        },
        "value.timezone_aware": {
            "pl": "brak przesunięcia względem UTC, np. 2027-01-31T18:00:00+01:00{given}",
            "en": "input should have a UTC offset, e.g. 2027-01-31T18:00:00+01:00{given}",
        },
        "value.mapping": {
            "pl": "oczekiwano słownika, czyli wierszy „klucz: wartość”{given}",
            "en": "input should be a mapping of keys to values{given}",
        },
        "value.list": {"pl": "oczekiwano listy{given}", "en": "input should be a list{given}"},
        "value.path": {
            "pl": "oczekiwano ścieżki pliku{given}",
            "en": "input should be a file path{given}",
        },
        # Parts of the reasons above
        "given": {"pl": " (podano {value})", "en": ", got {value}"},
        "given.empty": {"pl": " (podano pustą wartość)", "en": ", got an empty value"},
        "given.list": {"pl": " (podano listę)", "en": ", got a list"},
        "given.mapping": {"pl": " (podano słownik)", "en": ", got a mapping"},
        "size": {"pl": ", a ma {count}", "en": ", but has {count}"},
        "container.list": {"pl": "lista", "en": "list"},
        "container.mapping": {"pl": "słownik", "en": "mapping"},
        # A noun's forms for 1, for 2-4 (Polish only) and for other counts, split by "|".
        "noun.item": {"pl": "element|elementy|elementów", "en": "item|items"},
        "noun.key": {"pl": "klucz|klucze|kluczy", "en": "key|keys"},
        "noun.character": {"pl": "znak|znaki|znaków", "en": "character|characters"},
        "alternatives": {"pl": "{rest}, {last}", "en": "{rest} or {last}"},
        # The agent config's own checks (agent.config)
        "config.not_mapping": {
            "pl": "oczekiwano słownika z kluczami takimi jak member:, cluster:, broker:",
            "en": "expected a mapping with keys such as member:, cluster:, broker:",
        },
        "config.time_unquoted": {
            "pl": "godzinę ujmij w cudzysłów, np. {hint}: YAML odczytał ją jako liczbę {value}",
            "en": "time must be quoted, e.g. {hint}: YAML read it as the number {value}",
        },
        "config.time_invalid": {
            "pl": 'nieprawidłowa godzina {value!r}: oczekiwano "GG:MM" od "00:00" do "23:59"',
            "en": 'invalid time {value!r}: expected "HH:MM" from "00:00" to "23:59"',
        },
        "config.shift_empty": {
            "pl": "zmiana zaczyna się i kończy o {time}; podaj krótszą zmianę albo podziel ją na "
            "dwie",
            "en": "shift starts and ends at {time}; give a shorter or split shift",
        },
        "config.timezone_unknown": {
            "pl": "nieznana strefa czasowa {name!r}: podaj nazwę IANA, np. 'Europe/Warsaw'",
            "en": "unknown time zone {name!r}: use an IANA name such as 'Europe/Warsaw'",
        },
        "config.reconnect_order": {
            "pl": "reconnect_max_seconds nie może być mniejsze niż reconnect_min_seconds",
            "en": "reconnect_max_seconds must not be below reconnect_min_seconds",
        },
        "config.password_without_username": {
            "pl": "hasło wymaga nazwy użytkownika: dodaj broker.username albo usuń broker.password",
            "en": "a password needs a user name: add broker.username or remove broker.password",
        },
        "config.tls_without_mqtts": {
            "pl": "sekcja broker.tls działa tylko z adresem mqtts://; zmień broker.url na "
            "mqtts://HOST[:PORT] albo usuń sekcję tls",
            "en": "broker.tls works only with an mqtts:// URL; change broker.url to "
            "mqtts://HOST[:PORT] or remove the tls section",
        },
        "config.tls_key_without_cert": {
            "pl": "key_file wymaga cert_file: podaj certyfikat klienta, do którego należy klucz",
            "en": "key_file needs cert_file: give the client certificate the key belongs to",
        },
        "config.tls_password_without_cert": {
            "pl": "key_password wymaga cert_file i key_file: hasło chroni klucz certyfikatu "
            "klienta",
            "en": "key_password needs cert_file and key_file: it protects the client "
            "certificate's key",
        },
        "config.tls_file_missing": {
            "pl": "nie ma pliku {path}; ścieżka względna zaczyna się w katalogu pliku konfiguracji",
            "en": "file {path} not found; a relative path starts at the config file's folder",
        },
        "config.tls_file_unusable": {
            "pl": "nie można użyć pliku TLS: {reason}; popraw plik albo ścieżkę",
            "en": "cannot use the TLS file: {reason}; fix the file or the path",
        },
        "config.url_expected": {
            "pl": "oczekiwano mqtt://HOST[:PORT] lub mqtts://HOST[:PORT]",
            "en": "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        },
        "config.url_unparsable": {
            "pl": "nieprawidłowy adres {url!r}: sprawdź nazwę hosta, np. nawiasy adresu IPv6; "
            "{expected}",
            "en": "invalid URL {url!r}: check the host, e.g. the brackets of an IPv6 address; "
            "{expected}",
        },
        "config.url_port": {
            "pl": "nieprawidłowy port w adresie {url!r}: podaj liczbę od 1 do 65535; {expected}",
            "en": "invalid port in URL {url!r}: use a number from 1 to 65535; {expected}",
        },
        "config.url_credentials": {
            "pl": "adres nie może zawierać danych logowania; podaj je w broker.username "
            "i broker.password",
            "en": "the URL must not contain credentials; set broker.username and password",
        },
        "config.url_invalid": {
            "pl": "nieprawidłowy adres {url!r}: {expected}",
            "en": "invalid URL {url!r}: {expected}",
        },
        "config.url_path": {
            "pl": "nieprawidłowy adres {url!r}: usuń ścieżkę i parametry zapytania; {expected}",
            "en": "invalid URL {url!r}: remove the path or query; {expected}",
        },
        "config.adapters_not_list": {
            "pl": "oczekiwano listy sekcji adapterów",
            "en": "expected a list of adapter sections",
        },
        "config.adapter_not_mapping": {
            "pl": "oczekiwano słownika z co najmniej 'type:' i 'name:'",
            "en": "expected a mapping with at least 'type:' and 'name:'",
        },
        "config.adapter_type_missing": {
            "pl": "brak wartości albo wartość nie jest tekstem; podaj typ adaptera",
            "en": "missing or not a string; name an adapter type",
        },
        "config.adapter_name_missing": {
            "pl": "brak wartości albo wartość nie jest tekstem; nadaj adapterowi nazwę",
            "en": "missing or not a string; name this adapter",
        },
        "config.adapter_name_repeated": {
            "pl": "drugi adapter o nazwie {name!r}; nadaj każdemu adapterowi inną nazwę",
            "en": "second adapter named {name!r}; give each adapter a unique name",
        },
        "config.adapter_type_unknown": {
            "pl": "nieznany typ adaptera {type!r}; zainstalowane typy: {installed}",
            "en": "unknown adapter type {type!r}; installed types: {installed}",
        },
        "config.adapter_types_none": {"pl": "brak", "en": "none"},
        # Ids checked by kooperant.protocol.check_identifier (agent.reasons). The English text is
        # the protocol's own; {what} is one of the "id.*" nouns below.
        "id.invalid": {
            "pl": "nieprawidłowy identyfikator {what} {value!r}: użyj od 1 do 64 liter, cyfr, "
            "'.', '_' lub '-', zaczynając od litery lub cyfry",
            "en": "invalid {what} id {value!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        },
        "id.adapter": {"pl": "adaptera", "en": "adapter"},
        "id.cluster": {"pl": "klastra", "en": "cluster"},
        "id.group": {"pl": "grupy", "en": "group"},
        "id.member": {"pl": "członka", "en": "member"},
        "id.resource": {"pl": "zasobu", "en": "resource"},
        # The policy file's own checks (agent.policy.model, agent.policy.loader)
        "policy.not_mapping": {
            "pl": "oczekiwano słownika z kluczami 'groups:' i 'share:'",
            "en": "expected a mapping with the keys 'groups:' and 'share:'",
        },
        "policy.field_unknown": {
            "pl": "nieznane pole oferty {name!r}; dozwolone pola: {allowed}",
            "en": "unknown offer field {name!r}; allowed fields: {allowed}",
        },
        "policy.edges_not_ascending": {
            "pl": "granice przedziałów muszą ściśle rosnąć, a po {lower:g} następuje {upper:g}",
            "en": "band edges must be strictly ascending, but {upper:g} follows {lower:g}",
        },
        "policy.edge_not_finite": {
            "pl": "granica przedziału {value} nie jest skończoną liczbą; podaj skończone granice "
            ">= 0, a listę zakończ dolną granicą ostatniego, otwartego przedziału, np. 80 "
            "w [0, 8, 20, 40, 80]",
            "en": "band edge {value} is not a finite number; write finite edges >= 0, and end the "
            "list with the lower edge of the open last band, e.g. 80 in [0, 8, 20, 40, 80]",
        },
        "policy.expires_expected": {
            "pl": "oczekiwano daty albo daty z godziną i przesunięciem względem UTC, np. "
            "2027-01-31 lub 2027-01-31T18:00:00+01:00",
            "en": "expected a date or a date-time with a UTC offset, e.g. 2027-01-31 or "
            "2027-01-31T18:00:00+01:00",
        },
        "policy.expires_invalid": {
            "pl": "nieprawidłowa wartość expires {value!r}: {expected}",
            "en": "invalid expires {value!r}: {expected}",
        },
        "policy.expires_no_offset": {
            "pl": "nieprawidłowa wartość expires {value}: brak przesunięcia względem UTC; "
            "{expected}",
            "en": "invalid expires {value}: the UTC offset is missing; {expected}",
        },
        "policy.audience_empty": {
            "pl": "pusta lista odbiorców: podaj members lub groups albo wpisz 'audience: cluster'",
            "en": "empty audience: list members or groups, or write 'audience: cluster'",
        },
        "policy.audience_invalid": {
            "pl": "nieprawidłowa wartość audience {value!r}: wpisz 'cluster' albo słownik "
            "z kluczami members: i groups:",
            "en": "invalid audience {value!r}: write 'cluster' or a mapping with members: and "
            "groups:",
        },
        "policy.no_selector": {
            "pl": "reguła nie ma selektora; dodaj resource:, kind: lub tag:",
            "en": "rule has no selector; add resource:, kind: or tag:",
        },
        "policy.publish_as_one_id": {
            "pl": "publish_as {public_id!r} wymaga dokładnie jednego identyfikatora w resource: "
            "(podano {count}); każdy zasób o zmienionej nazwie opisz w osobnej regule",
            "en": "publish_as {public_id!r} needs exactly one id in resource:, found {count}; "
            "give each renamed resource its own rule",
        },
        "policy.public_id_used": {
            "pl": "publiczny identyfikator {public_id!r} jest już użyty dla zasobu {resource!r} "
            "w regule {rule} (wiersz {line}); dwa zasoby nie mogą dzielić jednego tematu, więc "
            "wybierz inne publish_as",
            "en": "public id {public_id!r} is already used for resource {resource!r} by rule "
            "{rule} (line {line}); two resources must not share one topic, so choose another "
            "publish_as",
        },
        "policy.group_unknown": {
            "pl": "nieznana grupa {group!r}; zdefiniuj ją w sekcji groups: (zdefiniowane: "
            "{defined})",
            "en": "unknown group {group!r}; define it under groups: (defined: {defined})",
        },
        "policy.groups_none": {"pl": "brak", "en": "none"},
        "config.adapter_type_broken": {
            "pl": "nie można załadować typu adaptera {type!r}: {error}",
            "en": "adapter type {type!r} cannot be loaded: {error}",
        },
    }
)
