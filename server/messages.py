"""User-facing text of the server: CLI help and output, errors, and the dashboard."""

from __future__ import annotations

from kooperant.i18n import Catalog

MESSAGES = Catalog(
    {
        # Errors (server.errors)
        "database_url_invalid": {
            "pl": "Nieprawidłowy adres bazy danych {url}. "
            "Podaj sqlite:///PLIK albo postgresql://UŻYTKOWNIK@HOST:PORT/BAZA.",
            "en": "Invalid database URL {url}. "
            "Use sqlite:///FILE or postgresql://USER@HOST:PORT/DATABASE.",
        },
        "database_url_scheme": {
            "pl": "Nieobsługiwany rodzaj bazy danych w adresie {url}. "
            "Podaj sqlite:///PLIK albo postgresql://UŻYTKOWNIK@HOST:PORT/BAZA.",
            "en": "Unsupported database in URL {url}. "
            "Use sqlite:///FILE or postgresql://USER@HOST:PORT/DATABASE.",
        },
        "database_url_sqlite_path": {
            "pl": "W adresie bazy SQLite {url} brakuje ścieżki pliku, np. sqlite:///kooperant.db.",
            "en": "The SQLite URL {url} has no file path; use e.g. sqlite:///kooperant.db.",
        },
        "database_url_postgres_name": {
            "pl": "W adresie bazy PostgreSQL {url} brakuje nazwy bazy, "
            "np. postgresql://kooperant@127.0.0.1:5432/kooperant.",
            "en": "The PostgreSQL URL {url} has no database name; "
            "use e.g. postgresql://kooperant@127.0.0.1:5432/kooperant.",
        },
        "database_url_unencoded_at": {
            "pl": "Adres bazy danych {url} zawiera więcej niż jeden znak „@” przed nazwą hosta. "
            "Zakoduj „@” w nazwie użytkownika lub haśle jako %40, "
            "np. postgresql://UŻYTKOWNIK:abc%40def@HOST:PORT/BAZA.",
            "en": "The database URL {url} contains more than one '@' before the host name. "
            "Percent-encode '@' in the user name or password as %40, "
            "e.g. postgresql://USER:abc%40def@HOST:PORT/DATABASE.",
        },
        "database_unavailable": {
            "pl": "Nie można otworzyć bazy SQLite {url}: {detail}. "
            "Sprawdź, czy katalog pliku istnieje i jest zapisywalny.",
            "en": "Cannot open the SQLite database {url}: {detail}. "
            "Check that the file's folder exists and is writable.",
        },
        "database_postgres_missing": {
            "pl": "Baza danych {name} nie istnieje na serwerze PostgreSQL {host}:{port} ({url}). "
            "Utwórz ją poleceniem {createdb} albo w psql: CREATE DATABASE {name}, "
            "i uruchom ponownie.",
            "en": "The database {name} does not exist on the PostgreSQL server {host}:{port} "
            "({url}). Create it with {createdb} or, in psql, CREATE DATABASE {name}, "
            "then start again.",
        },
        "database_postgres_refused": {
            "pl": "Nie można połączyć się z bazą danych {url}: {detail}. "
            "Sprawdź, czy serwer PostgreSQL działa i nasłuchuje na {host}:{port}.",
            "en": "Cannot connect to the database {url}: {detail}. "
            "Check that the PostgreSQL server is running and listens on {host}:{port}.",
        },
        "database_postgres_unavailable": {
            "pl": "Nie można połączyć się z bazą danych {url}: {detail}. "
            "Sprawdź host, port, użytkownika i hasło w adresie oraz czy serwer PostgreSQL "
            "dopuszcza to połączenie (pg_hba.conf).",
            "en": "Cannot connect to the database {url}: {detail}. "
            "Check the host, port, user name and password in the URL, and that the PostgreSQL "
            "server allows this connection (pg_hba.conf).",
        },
        "database_migration_failed": {
            "pl": "Migracja bazy danych {url} nie powiodła się: {detail}.",
            "en": "Migrating the database {url} failed: {detail}.",
        },
        "database_schema_outdated": {
            "pl": "Schemat bazy danych {url} ma wersję {current}, a ten program wymaga {head}. "
            "Uruchom: kooperant server migrate --database ADRES.",
            "en": "The database {url} has schema revision {current}, this version needs {head}. "
            "Run: kooperant server migrate --database URL.",
        },
        "storage_failed": {
            "pl": "Operacja „{operation}” na bazie {url} nie powiodła się: {detail}.",
            "en": "Database operation '{operation}' on {url} failed: {detail}.",
        },
        "broker_url_scheme": {
            "pl": "Nieprawidłowy adres brokera MQTT {url}: adres musi zaczynać się od mqtt:// "
            "albo mqtts:// (TLS), np. mqtt://127.0.0.1:1883 lub mqtts://broker.example:8883.",
            "en": "Invalid MQTT broker URL {url}: it must start with mqtt:// or mqtts:// (TLS), "
            "e.g. mqtt://127.0.0.1:1883 or mqtts://broker.example:8883.",
        },
        "broker_url_credentials": {
            "pl": "Adres brokera MQTT {url} zawiera dane logowania. Podaj je opcjami "
            "--broker-username i --broker-password-file.",
            "en": "The MQTT broker URL {url} contains credentials. Give them with "
            "--broker-username and --broker-password-file instead.",
        },
        "broker_url_host": {
            "pl": "W adresie brokera MQTT {url} brakuje hosta, np. mqtt://127.0.0.1:1883.",
            "en": "The MQTT broker URL {url} has no host; use e.g. mqtt://127.0.0.1:1883.",
        },
        "broker_url_path": {
            "pl": "Adres brokera MQTT {url} ma ścieżkę lub parametry; podaj tylko mqtt://HOST:PORT.",
            "en": "The MQTT broker URL {url} has a path or query; give only mqtt://HOST:PORT.",
        },
        "broker_url_port": {
            "pl": "Nieprawidłowy port w adresie brokera MQTT {url}; podaj liczbę 1–65535.",
            "en": "Invalid port in the MQTT broker URL {url}; use a number from 1 to 65535.",
        },
        "broker_port_in_use": {
            "pl": "Wbudowany broker MQTT nie może nasłuchiwać na {host}:{port}, "
            "bo port jest zajęty. "
            "Wskaż działający broker opcją --broker albo wybierz inny port "
            "opcją --embedded-broker-port.",
            "en": "The embedded MQTT broker cannot listen on {host}:{port}: the port is taken. "
            "Point to a running broker with --broker or pick another port with "
            "--embedded-broker-port.",
        },
        "http_port_in_use": {
            "pl": "Serwer HTTP nie może nasłuchiwać na {host}:{port}: port jest zajęty. "
            "Wybierz inny port opcją --port.",
            "en": "The HTTP server cannot listen on {host}:{port}: port in use. "
            "Pick another port with --port.",
        },
        "http_port_denied": {
            "pl": "Serwer HTTP nie może nasłuchiwać na {host}:{port}: {detail}. "
            "Porty poniżej 1024 zwykle wymagają uprawnień administratora. "
            "Wybierz inny port opcją --port, np. 8000.",
            "en": "The HTTP server cannot listen on {host}:{port}: {detail}. "
            "Ports below 1024 usually need administrator rights. "
            "Pick another port with --port, e.g. 8000.",
        },
        "http_host_invalid": {
            "pl": "Serwer HTTP nie może nasłuchiwać na {host}:{port}: {detail}. "
            "Tego adresu nie da się tu użyć. Podaj inny opcją --host, np. 127.0.0.1 "
            "(tylko ten komputer) albo 0.0.0.0 (wszystkie interfejsy).",
            "en": "The HTTP server cannot listen on {host}:{port}: {detail}. "
            "This host cannot be used here. Pick another with --host, e.g. 127.0.0.1 "
            "(this computer only) or 0.0.0.0 (all interfaces).",
        },
        "client_id_invalid": {
            "pl": "Nieprawidłowy identyfikator klienta MQTT {value!r} (--client-id): dozwolone są "
            "litery, cyfry, „.”, „_”, „:” i „-” (1–128 znaków, na początku litera lub cyfra).",
            "en": "Invalid MQTT client id {value!r} (--client-id): use 1 to 128 letters, digits, "
            "'.', '_', ':' or '-', starting with a letter or digit.",
        },
        "shared_group_invalid": {
            "pl": "Nieprawidłowa nazwa grupy współdzielonej subskrypcji {value!r} "
            "(--shared-group): dozwolone są litery, cyfry, „.”, „_” i „-” (1–64 znaki, "
            "na początku litera lub cyfra).",
            "en": "Invalid shared subscription group {value!r} (--shared-group): use 1 to 64 "
            "letters, digits, '.', '_' or '-', starting with a letter or digit.",
        },
        "shared_group_needs_client_id": {
            "pl": "Z opcją --shared-group {group} każdy proces odbierający potrzebuje własnego, "
            "stałego identyfikatora klienta. Podaj go opcją --client-id, np. "
            "--client-id kooperant-ingest-1, i nie zmieniaj go przy ponownym uruchomieniu.",
            "en": "With --shared-group {group} every ingest process needs a client id of its "
            "own that stays the same across restarts. Give it with --client-id, e.g. "
            "--client-id kooperant-ingest-1.",
        },
        "shared_group_embedded": {
            "pl": "Opcja --shared-group {group} wymaga zewnętrznego brokera, np. Mosquitto: "
            "wbudowany broker (amqtt) nie obsługuje współdzielonych subskrypcji. "
            "Podaj broker opcją --broker.",
            "en": "--shared-group {group} needs an external broker such as Mosquitto: the "
            "embedded broker (amqtt) does not support shared subscriptions. "
            "Give the broker with --broker.",
        },
        "session_expiry_invalid": {
            "pl": "Nieprawidłowy czas wygaśnięcia sesji MQTT {value} (--session-expiry): "
            "podaj liczbę sekund od 1 do {maximum}.",
            "en": "Invalid MQTT session expiry {value} (--session-expiry): give a number of "
            "seconds from 1 to {maximum}.",
        },
        "mqtt_protocol_invalid": {
            "pl": "Nieprawidłowa wersja protokołu MQTT {value!r} (--mqtt-protocol): "
            "podaj auto, 5 albo 3.1.1.",
            "en": "Invalid MQTT protocol version {value!r} (--mqtt-protocol): use auto, 5 or "
            "3.1.1.",
        },
        "embedded_broker_protocol": {
            "pl": "Wbudowany broker (amqtt) obsługuje tylko MQTT {supported}, a podano "
            "--mqtt-protocol {value}. Pomiń tę opcję albo wskaż inny broker opcją --broker.",
            "en": "The embedded broker (amqtt) supports only MQTT {supported}, but "
            "--mqtt-protocol is {value}. Leave the option out or give another broker with "
            "--broker.",
        },
        "broker_tls_needs_mqtts": {
            "pl": "Opcja {option} dotyczy tylko połączenia TLS z brokerem, a adres brokera to "
            "{url}. Podaj adres mqtts://HOST:PORT opcją --broker albo pomiń {option}.",
            "en": "{option} applies only to a TLS connection to the broker, but the broker URL "
            "is {url}. Give an mqtts://HOST:PORT URL with --broker or leave {option} out.",
        },
        "broker_tls_file_missing": {
            "pl": "Plik {path} podany w opcji {option} nie istnieje albo nie jest plikiem. "
            "Sprawdź ścieżkę.",
            "en": "The file {path} given with {option} does not exist or is not a file. "
            "Check the path.",
        },
        "broker_password_without_username": {
            "pl": "Podano --broker-password-file bez --broker-username. Broker MQTT przyjmuje "
            "hasło tylko razem z nazwą użytkownika: dodaj --broker-username.",
            "en": "--broker-password-file was given without --broker-username. An MQTT broker "
            "takes a password only together with a user name: add --broker-username.",
        },
        "broker_key_without_cert": {
            "pl": "Podano klucz prywatny {path} (--broker-key-file) bez certyfikatu klienta. "
            "Dodaj opcję --broker-cert-file.",
            "en": "The private key {path} (--broker-key-file) was given without a client "
            "certificate. Add --broker-cert-file.",
        },
        "broker_tls_invalid": {
            "pl": "Nie można użyć ustawień TLS brokera: {detail}. Popraw plik i uruchom ponownie.",
            "en": "The broker's TLS settings cannot be used: {detail}. Fix the file and start "
            "again.",
        },
        "ingest_needs_broker": {
            "pl": "Polecenie kooperant server ingest wymaga brokera: podaj go opcją --broker, "
            "np. --broker mqtt://127.0.0.1:1883.",
            "en": "kooperant server ingest needs a broker: give it with --broker, "
            "e.g. --broker mqtt://127.0.0.1:1883.",
        },
        "cluster_invalid": {
            "pl": "Nieprawidłowy identyfikator klastra {value!r}: dozwolone są litery, cyfry, "
            "„.”, „_” i „-” (1–64 znaki, na początku litera lub cyfra).",
            "en": "Invalid cluster id {value!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
        },
        "member_invalid": {
            "pl": "Nieprawidłowy identyfikator członka {value!r}: dozwolone są litery, cyfry, "
            "„.”, „_” i „-” (1–64 znaki, na początku litera lub cyfra).",
            "en": "Invalid member id {value!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
        },
        "tokens_file_invalid": {
            "pl": "Nieprawidłowy plik tokenów {path}. Popraw poniższe miejsca i uruchom "
            "polecenie ponownie:",
            "en": "Invalid tokens file {path}. Fix the places below and run the command again:",
        },
        "tokens_not_found": {
            "pl": "nie ma takiego pliku; sprawdź ścieżkę albo utwórz plik poleceniem "
            "kooperant server token add",
            "en": "file not found; check the path or create the file with "
            "kooperant server token add",
        },
        "tokens_empty": {
            "pl": "plik nie zawiera żadnego tokenu, więc serwer odrzucałby każde zapytanie. "
            "Dodaj token poleceniem kooperant server token add --tokens {path} "
            "--cluster KLASTER --member CZŁONEK",
            "en": "the file has no tokens, so the server would reject every request. Add one "
            "with kooperant server token add --tokens {path} --cluster CLUSTER --member MEMBER",
        },
        "tokens_not_utf8": {
            "pl": "plik nie jest tekstem UTF-8 (bajt {position}); zapisz go w UTF-8",
            "en": "the file is not UTF-8 text (byte {position}); save it as UTF-8",
        },
        "tokens_unreadable": {
            "pl": "nie można odczytać pliku ({detail}); sprawdź ścieżkę i uprawnienia",
            "en": "cannot read the file ({detail}); check the path and its permissions",
        },
        "tokens_unwritable": {
            "pl": "nie można zapisać pliku ({detail}); sprawdź uprawnienia do katalogu",
            "en": "cannot write the file ({detail}); check the permissions of its folder",
        },
        "tokens_yaml": {
            "pl": "nieprawidłowy YAML: {detail}",
            "en": "invalid YAML: {detail}",
        },
        "tokens_not_list": {
            "pl": "plik musi być listą wpisów „- cluster: …, member: …, token_sha256: …”",
            "en": "the file must be a list of entries '- cluster: ..., member: ..., "
            "token_sha256: ...'",
        },
        "tokens_entry_not_mapping": {
            "pl": "wpis musi mieć klucze cluster, member i token_sha256",
            "en": "an entry needs the keys cluster, member and token_sha256",
        },
        "tokens_key_unknown": {
            "pl": "nieznany klucz; dozwolone są cluster, member i token_sha256",
            "en": "unknown key; use only cluster, member and token_sha256",
        },
        "tokens_key_duplicate": {
            "pl": "powtórzony klucz; zostaw tylko jeden",
            "en": "duplicate key; keep only one of its entries",
        },
        "tokens_key_missing": {
            "pl": "brak wymaganego klucza; dodaj go",
            "en": "missing required key; add it",
        },
        "tokens_value_not_text": {
            "pl": "wartość musi być tekstem, nie listą ani słownikiem",
            "en": "the value must be text, not a list or a mapping",
        },
        "tokens_id_invalid": {
            "pl": "nieprawidłowy identyfikator {value!r}: dozwolone są litery, cyfry, „.”, „_” "
            "i „-” (1–64 znaki, na początku litera lub cyfra)",
            "en": "invalid id {value!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        },
        "tokens_hash_invalid": {
            "pl": "to nie jest skrót SHA-256 (64 cyfry szesnastkowe; wartości nie pokazujemy, bo "
            "może to być sam token). Nowy wpis utworzy kooperant server token add",
            "en": "not a SHA-256 hash of 64 hexadecimal digits (the value is not shown, as it "
            "may be a token itself). kooperant server token add writes a valid entry",
        },
        "tokens_hash_repeated": {
            "pl": "ten sam skrót jest już w linii {line}; usuń jeden z wpisów",
            "en": "the same hash is already on line {line}; remove one of the entries",
        },
        "tokens_append_failed": {
            "pl": "nie można dopisać wpisu na końcu pliku; zapisz wpisy jako listę blokową "
            "(każdy wpis w nowej linii zaczynającej się od „- ”)",
            "en": "cannot append an entry to the end of the file; write the entries as a block "
            "list (each entry on a new line starting with '- ')",
        },
        "tokens_file_header": {
            "pl": "# Tokeny API serwera kooperant: tylko skróty SHA-256, żadnych tokenów.\n"
            "# Nowy token: kooperant server token add --tokens PLIK --cluster K --member C",
            "en": "# API tokens of the kooperant server: SHA-256 hashes only, never tokens.\n"
            "# New token: kooperant server token add --tokens FILE --cluster C --member M",
        },
        "password_file_unreadable": {
            "pl": "Nie można odczytać pliku z hasłem brokera {path}: {detail}.",
            "en": "Cannot read the broker password file {path}: {detail}.",
        },
        "key_password_file_unreadable": {
            "pl": "Nie można odczytać pliku z hasłem klucza prywatnego {path} "
            "(--broker-key-password-file): {detail}.",
            "en": "Cannot read the private key password file {path} "
            "(--broker-key-password-file): {detail}.",
        },
        # CLI
        "cli_help": {
            "pl": "Serwer agregujący klastra: odbiera oferty z MQTT, udostępnia API i panel.",
            "en": "The cluster aggregator: receives offers over MQTT, serves the API and "
            "the dashboard.",
        },
        "cli_run_help": {
            "pl": "Uruchom serwer do przerwania (Ctrl+C, SIGTERM).",
            "en": "Run the server until interrupted (Ctrl+C, SIGTERM).",
        },
        "cli_ingest_help": {
            "pl": "Tylko odbieraj wiadomości z brokera i zapisuj je w bazie (bez HTTP i bez "
            "wbudowanego brokera), do przerwania. Kolejne procesy z --shared-group dzielą się "
            "pracą. Nie migruje bazy: najpierw uruchom kooperant server migrate.",
            "en": "Only receive messages from the broker and store them (no HTTP, no embedded "
            "broker) until interrupted. More processes with --shared-group share the work. "
            "Does not migrate the database: run kooperant server migrate first.",
        },
        "cli_ingest_running": {
            "pl": "Odbieranie z {url} jako klient {client_id}.",
            "en": "Receiving from {url} as client {client_id}.",
        },
        "cli_ingest_stopped": {
            "pl": "Odbieranie zatrzymane.",
            "en": "Ingest stopped.",
        },
        "cli_migrate_help": {
            "pl": "Utwórz lub zaktualizuj schemat bazy danych i zakończ.",
            "en": "Create or upgrade the database schema and exit.",
        },
        "opt_database": {
            "pl": "Adres bazy danych: sqlite:///PLIK albo postgresql://UŻYTKOWNIK@HOST:PORT/BAZA.",
            "en": "Database URL: sqlite:///FILE or postgresql://USER@HOST:PORT/DATABASE.",
        },
        "opt_broker": {
            "pl": "Adres brokera MQTT (mqtt://HOST:PORT, a przez TLS mqtts://HOST:PORT). Bez "
            "tej opcji serwer uruchamia wbudowany broker na 127.0.0.1.",
            "en": "MQTT broker URL (mqtt://HOST:PORT, or mqtts://HOST:PORT over TLS). Without "
            "it the server starts an embedded broker on 127.0.0.1.",
        },
        "opt_ingest_broker": {
            "pl": "Adres brokera MQTT (mqtt://HOST:PORT, a przez TLS mqtts://HOST:PORT); wymagany.",
            "en": "MQTT broker URL (mqtt://HOST:PORT, or mqtts://HOST:PORT over TLS); required.",
        },
        "opt_client_id": {
            "pl": "Identyfikator klienta MQTT, pod którym broker przechowuje sesję tego "
            "serwera; domyślnie kooperant-aggregator (z dopiskiem -KLASTER przy --cluster). "
            "Musi być stały między uruchomieniami.",
            "en": "MQTT client id under which the broker keeps this server's session; "
            "kooperant-aggregator by default (with -CLUSTER appended when --cluster is given). "
            "Keep it the same across restarts.",
        },
        "opt_shared_group": {
            "pl": "Nazwa grupy współdzielonej subskrypcji MQTT 5 ($share/GRUPA/...): procesy z tą "
            "samą grupą dzielą się wiadomościami. Wymaga --broker i --client-id.",
            "en": "Name of an MQTT 5 shared subscription group ($share/GROUP/...): processes in "
            "the same group split the messages between them. Needs --broker and --client-id.",
        },
        "opt_session_expiry": {
            "pl": "Jak długo (w sekundach) broker przechowuje sesję i zaległe wiadomości po "
            "rozłączeniu serwera; domyślnie 604800 (7 dni).",
            "en": "How long, in seconds, the broker keeps the session and queued messages after "
            "the server disconnects; 604800 (7 days) by default.",
        },
        "opt_mqtt_protocol": {
            "pl": "Wersja protokołu MQTT: auto, 5 albo 3.1.1. Przy auto (domyślnie) serwer łączy "
            "się przez MQTT 5, a gdy broker go nie przyjmie, przez 3.1.1 aż do ponownego "
            "uruchomienia. Z wbudowanym brokerem zawsze 3.1.1.",
            "en": "MQTT protocol version: auto, 5 or 3.1.1. With auto (the default) the server "
            "connects with MQTT 5 and, when the broker does not accept it, with 3.1.1 until it "
            "restarts. Always 3.1.1 with the embedded broker.",
        },
        "opt_broker_ca_file": {
            "pl": "Plik PEM z certyfikatem urzędu (CA), który podpisał certyfikat brokera "
            "(dla mqtts://); domyślnie systemowe CA.",
            "en": "PEM file with the certificate authority (CA) that signed the broker's "
            "certificate (for mqtts://); the system CAs by default.",
        },
        "opt_broker_cert_file": {
            "pl": "Plik PEM z certyfikatem klienta, gdy broker go wymaga (dla mqtts://).",
            "en": "PEM file with the client certificate, when the broker requires one "
            "(for mqtts://).",
        },
        "opt_broker_key_file": {
            "pl": "Plik PEM z kluczem prywatnym certyfikatu klienta (dla mqtts://).",
            "en": "PEM file with the private key of the client certificate (for mqtts://).",
        },
        "opt_broker_key_password_file": {
            "pl": "Plik z hasłem do zaszyfrowanego klucza prywatnego (pierwsza linia).",
            "en": "File containing the password of an encrypted private key (first line).",
        },
        "opt_broker_username": {
            "pl": "Nazwa użytkownika brokera MQTT.",
            "en": "User name for the MQTT broker.",
        },
        "opt_broker_password_file": {
            "pl": "Plik z hasłem do brokera MQTT (pierwsza linia).",
            "en": "File containing the MQTT broker password (first line).",
        },
        "opt_cluster": {
            "pl": "Identyfikator klastra, którego oferty przyjmować; domyślnie wszystkie.",
            "en": "Id of the cluster whose offers to accept; all clusters by default.",
        },
        "opt_host": {
            "pl": "Adres, na którym nasłuchuje HTTP.",
            "en": "Address the HTTP server listens on.",
        },
        "opt_port": {"pl": "Port HTTP.", "en": "HTTP port."},
        "opt_embedded_broker_port": {
            "pl": "Port wbudowanego brokera MQTT (gdy nie podano --broker).",
            "en": "Port of the embedded MQTT broker (when --broker is not given).",
        },
        "opt_tokens": {
            "pl": "Plik tokenów API (YAML). Z nim API i panel wymagają tokenu członka, a każdy "
            "członek widzi tylko oferty dla siebie; bez niego serwer jest otwarty i pokazuje "
            "tylko oferty dla całego klastra.",
            "en": "API tokens file (YAML). With it, the API and the dashboard require a member's "
            "token and each member sees only the offers meant for it; without it the server is "
            "open and shows only offers meant for the whole cluster.",
        },
        "cli_token_help": {
            "pl": "Tokeny API członków.",
            "en": "Members' API tokens.",
        },
        "cli_token_add_help": {
            "pl": "Utwórz losowy token członka, dopisz jego skrót do pliku tokenów i pokaż token "
            "jeden raz.",
            "en": "Create a random token for a member, append its hash to the tokens file and "
            "show the token once.",
        },
        "opt_token_file": {
            "pl": "Plik tokenów (YAML); zostanie utworzony, jeśli go nie ma.",
            "en": "The tokens file (YAML); created when missing.",
        },
        "opt_token_cluster": {
            "pl": "Identyfikator klastra członka.",
            "en": "Id of the member's cluster.",
        },
        "opt_token_member": {
            "pl": "Identyfikator członka, do którego należy token.",
            "en": "Id of the member the token belongs to.",
        },
        "token_added": {
            "pl": "Dopisano token członka {member} (klaster {cluster}) do {path}. Przekaż go "
            "członkowi bezpiecznym kanałem; nie da się go wyświetlić ponownie. Działający serwer "
            "wczyta go w ciągu sekundy.",
            "en": "Added a token for member {member} (cluster {cluster}) to {path}. Give it to "
            "the member over a safe channel; it cannot be shown again. A running server picks "
            "it up within a second.",
        },
        "cli_dashboard": {"pl": "Panel: {url}", "en": "Dashboard: {url}"},
        "cli_broker": {"pl": "Broker MQTT: {url}", "en": "MQTT broker: {url}"},
        "cli_stopped": {"pl": "Serwer zatrzymany.", "en": "Server stopped."},
        "cli_migrated": {
            "pl": "Schemat bazy {url} jest aktualny (wersja {revision}).",
            "en": "The schema of {url} is up to date (revision {revision}).",
        },
        # kooperant server add-member
        "member_reserved": {
            "pl": "Identyfikator członka {value!r} jest zarezerwowany dla konta agregatora "
            "w brokerze MQTT, które może czytać wiadomości wszystkich członków. Wybierz inny.",
            "en": "The member id {value!r} is reserved for the aggregator's broker account, "
            "which may read every member's messages. Pick another id.",
        },
        "member_not_registered": {
            "pl": "Członek {member} (klaster {cluster}) nie jest zarejestrowany, więc "
            "--new-password nie ma komu zmienić hasła. Sprawdź pisownię identyfikatorów; nowego "
            "członka zarejestruj poleceniem bez --new-password.",
            "en": "Member {member} (cluster {cluster}) is not registered, so --new-password has "
            "no password to change. Check the spelling of the ids; register a new member by "
            "running the command without --new-password.",
        },
        "member_already_registered": {
            "pl": "Członek {member} (klaster {cluster}) jest już zarejestrowany. Aby nadać mu "
            "nowe hasło do brokera, uruchom polecenie ponownie z opcją --new-password; stare "
            "hasło przestanie działać, gdy broker ponownie wczyta plik haseł.",
            "en": "Member {member} (cluster {cluster}) is already registered. To give it a new "
            "broker password, run the command again with --new-password; the old password "
            "stops working once the broker reloads its password file.",
        },
        "mosquitto_passwords_unreadable": {
            "pl": "Nie można odczytać pliku haseł Mosquitto {path}: {detail}. "
            "Sprawdź ścieżkę i uprawnienia.",
            "en": "Cannot read the Mosquitto password file {path}: {detail}. "
            "Check the path and its permissions.",
        },
        "mosquitto_passwords_unwritable": {
            "pl": "Nie można zapisać pliku haseł Mosquitto {path}: {detail}. Sprawdź, czy "
            "katalog pliku istnieje i czy ten użytkownik może w nim tworzyć pliki.",
            "en": "Cannot write the Mosquitto password file {path}: {detail}. Check that the "
            "file's folder exists and that this user may create files in it.",
        },
        "cli_add_member_help": {
            "pl": "Zarejestruj członka klastra, utwórz jego hasło do brokera MQTT i pokaż je "
            "jeden raz razem z ustawieniami brokera dla agenta.",
            "en": "Register a cluster member, create its MQTT broker password and show it once "
            "with the broker settings for its agent.",
        },
        "opt_member_cluster": {
            "pl": "Identyfikator klastra członka.",
            "en": "Id of the member's cluster.",
        },
        "opt_member_id": {
            "pl": "Identyfikator członka; jest też jego nazwą użytkownika w brokerze.",
            "en": "Id of the member; it is also the member's user name at the broker.",
        },
        "opt_mosquitto_passwords": {
            "pl": "Plik haseł Mosquitto (password_file), w którym zapisać konto członka; "
            "zostanie utworzony z prawami 0600, jeśli go nie ma. Bez tej opcji ustaw hasło "
            "w brokerze samodzielnie.",
            "en": "Mosquitto password file (password_file) to write the member's account into; "
            "created with mode 0600 when missing. Without it, set the password at the broker "
            "yourself.",
        },
        "opt_new_password": {
            "pl": "Nadaj nowe hasło członkowi, który jest już zarejestrowany.",
            "en": "Give a new password to a member that is already registered.",
        },
        "member_registered": {
            "pl": "Zarejestrowano członka {member} (klaster {cluster}) w bazie {url}.",
            "en": "Registered member {member} (cluster {cluster}) in {url}.",
        },
        "member_password_renewed": {
            "pl": "Członek {member} (klaster {cluster}) był już zarejestrowany w bazie {url}; "
            "zmienia się tylko jego hasło.",
            "en": "Member {member} (cluster {cluster}) was already registered in {url}; only its "
            "password changes.",
        },
        "member_password_written": {
            "pl": "Zapisano konto {member} w pliku haseł {path}. Mosquitto użyje go dopiero po "
            "ponownym wczytaniu plików: systemctl reload mosquitto albo kill -HUP PID_MOSQUITTO.",
            "en": "Wrote the account of {member} to the password file {path}. Mosquitto uses it "
            "only after reloading its files: systemctl reload mosquitto or "
            "kill -HUP MOSQUITTO_PID.",
        },
        "mosquitto_passwords_created": {
            "pl": "Utworzono plik {path} z prawami 0600, więc czytać go może tylko jego "
            "właściciel. Mosquitto uruchomiony jako root przełącza się na użytkownika "
            "mosquitto, więc nadaj mu plik: chown mosquitto:mosquitto {path}.",
            "en": "Created {path} with mode 0600, so only its owner can read it. Mosquitto "
            "started as root switches to the user mosquitto, so give it the file: "
            "chown mosquitto:mosquitto {path}.",
        },
        "member_password_not_written": {
            "pl": "Nie podano --mosquitto-passwords, więc ustaw to hasło użytkownikowi {member} "
            "w brokerze samodzielnie (w Mosquitto: mosquitto_passwd PLIK_HASEŁ {member}, "
            "potem ponowne wczytanie plików).",
            "en": "No --mosquitto-passwords was given, so set this password for the user "
            "{member} at the broker yourself (for Mosquitto: mosquitto_passwd PASSWORD_FILE "
            "{member}, then reload it).",
        },
        "member_password_once": {
            "pl": "Poniżej są ustawienia brokera dla konfiguracji agenta członka, z hasłem. "
            "Przekaż je członkowi bezpiecznym kanałem; hasła nie zapisano nigdzie jawnie "
            "i nie da się go wyświetlić ponownie. Zamień BROKER_HOST na adres brokera.",
            "en": "Below are the broker settings for the member's agent config, with the "
            "password. Give them to the member over a safe channel; the password is stored "
            "nowhere in clear text and cannot be shown again. Replace BROKER_HOST with the "
            "broker's address.",
        },
        "member_snippet_ca_file": {
            "pl": "# Certyfikat CA brokera, gdy jego certyfikatu nie wystawił publiczny urząd.",
            "en": "# The broker's CA certificate, when no public CA signed its certificate.",
        },
        # Dashboard
        "page_title": {
            "pl": "kooperant – wolne moce w klastrze",
            "en": "kooperant – free capacity in the cluster",
        },
        "page_intro": {
            "pl": "Oferty członków klastra. Czas: Europa/Warszawa.",
            "en": "Offers of the cluster's members. Times: Europe/Warsaw.",
        },
        "no_offers": {
            "pl": "Brak ofert. Gdy agent członka opublikuje ofertę, pojawi się tutaj.",
            "en": "No offers yet. They appear here once a member's agent publishes one.",
        },
        "member_heading": {
            "pl": "Członek {member} (klaster {cluster})",
            "en": "Member {member} (cluster {cluster})",
        },
        "last_seen": {"pl": "ostatnio widziany {time}", "en": "last seen {time}"},
        "status_online": {"pl": "połączony", "en": "online"},
        "status_offline": {"pl": "rozłączony", "en": "offline"},
        "status_unknown": {"pl": "stan połączenia nieznany", "en": "connection status unknown"},
        "status_since": {"pl": "od {time}", "en": "since {time}"},
        "no_current_offers": {
            "pl": "Ten członek nie ma teraz żadnych ofert.",
            "en": "This member has no current offers.",
        },
        "col_resource": {"pl": "Zasób", "en": "Resource"},
        "col_kind": {"pl": "Rodzaj", "en": "Kind"},
        "col_state": {"pl": "Stan", "en": "State"},
        "col_free": {"pl": "Wolne", "en": "Free"},
        "quantity_cpu_free": {"pl": "CPU", "en": "CPU"},
        "quantity_memory_free": {"pl": "pamięć", "en": "memory"},
        "quantity_disk_free": {"pl": "dysk", "en": "disk"},
        "unit_cores": {"pl": "rdz.", "en": "cores"},
        "band_closed": {"pl": "{min}–{max}", "en": "{min}–{max}"},
        "band_open": {"pl": "≥ {min}", "en": "≥ {min}"},
        "signed_in_as": {
            "pl": "Zalogowano jako {member} (klaster {cluster})",
            "en": "Signed in as {member} (cluster {cluster})",
        },
        "sign_out": {"pl": "Wyloguj", "en": "Sign out"},
        "col_next_free": {"pl": "Najbliższy wolny termin", "en": "Next free interval"},
        "col_updated": {"pl": "Aktualizacja", "en": "Updated"},
        "none": {"pl": "–", "en": "–"},
        "switch_language": {"pl": "English", "en": "Polski"},
        "nav_label": {"pl": "Menu główne", "en": "Main menu"},
        "nav_search": {"pl": "Wyszukiwanie", "en": "Search"},
        "nav_members": {"pl": "Członkowie", "en": "Members"},
        "nav_coordinator": {"pl": "Koordynator", "en": "Coordinator"},
        "kind_machine": {"pl": "maszyna", "en": "machine"},
        "kind_storage": {"pl": "magazyn", "en": "storage"},
        "kind_it_capacity": {"pl": "moc obliczeniowa IT", "en": "IT capacity"},
        "kind_it_team": {"pl": "zespół IT", "en": "IT team"},
        "kind_supplies": {"pl": "materiały", "en": "supplies"},
        "state_NotAvailable": {"pl": "niedostępna", "en": "not available"},
        "state_OutOfService": {"pl": "wyłączona z eksploatacji", "en": "out of service"},
        "state_NotExecuting": {"pl": "nie pracuje", "en": "not executing"},
        "state_Executing": {"pl": "pracuje", "en": "executing"},
        "state_Unknown": {"pl": "nieznany", "en": "unknown"},
        # Search pages
        "search_title": {"pl": "Wyszukiwanie wolnych mocy", "en": "Search free capacity"},
        "search_intro": {
            "pl": "Filtruj oferty członków klastra. Czas: Europa/Warszawa. Adres strony zawiera "
            "całe wyszukiwanie, więc można go przesłać dalej.",
            "en": "Filter the offers of the cluster's members. Times: Europe/Warsaw. The page "
            "address holds the whole search, so it can be shared.",
        },
        "search_kind": {"pl": "Rodzaj", "en": "Kind"},
        "search_capability": {"pl": "Możliwości", "en": "Capabilities"},
        "search_capability_hint": {
            "pl": "np. 5-axis-milling, laser-cutting",
            "en": "e.g. 5-axis-milling, laser-cutting",
        },
        "search_region": {"pl": "Województwo", "en": "Voivodeship"},
        "search_any_region": {"pl": "dowolne", "en": "any"},
        "search_city": {"pl": "Miejscowość", "en": "City"},
        "search_from": {"pl": "Wolne od dnia", "en": "Free from"},
        "search_to": {"pl": "do dnia", "en": "to"},
        "search_min_free": {
            "pl": "Co najmniej wolnego (h lub ilość)",
            "en": "At least free (h or amount)",
        },
        "search_quantity": {"pl": "Wielkość", "en": "Quantity"},
        "search_quantity_hint": {"pl": "np. pallet_places", "en": "e.g. pallet_places"},
        "search_submit": {"pl": "Szukaj", "en": "Search"},
        "search_reset": {"pl": "Wyczyść", "en": "Clear"},
        "search_invalid": {
            "pl": "Nie można wykonać wyszukiwania:",
            "en": "The search cannot be run:",
        },
        "search_result_count": {"pl": "Znalezione oferty: {total}", "en": "Offers found: {total}"},
        "search_export_csv": {
            "pl": "Pobierz CSV (najwyżej {limit} wierszy)",
            "en": "Download CSV (at most {limit} rows)",
        },
        "search_no_results": {
            "pl": "Żadna oferta nie spełnia tych warunków.",
            "en": "No offer matches this search.",
        },
        "search_text_too_long": {
            "pl": "Pole {name} jest dłuższe niż {max} znaków.",
            "en": "The field {name} is longer than {max} characters.",
        },
        "search_kind_unknown": {
            "pl": "Nieznany rodzaj zasobu „{value}”.",
            "en": "Unknown resource kind '{value}'.",
        },
        "search_region_unknown": {
            "pl": "Nieznane województwo „{value}”.",
            "en": "Unknown voivodeship '{value}'.",
        },
        "search_sort_unknown": {
            "pl": "Nieznany porządek sortowania „{value}”.",
            "en": "Unknown sort order '{value}'.",
        },
        "search_date_invalid": {
            "pl": "Data „{value}” w polu {name} jest nieprawidłowa; podaj datę w formacie "
            "RRRR-MM-DD.",
            "en": "The date '{value}' in the field {name} is invalid; use the format YYYY-MM-DD.",
        },
        "search_to_before_from": {
            "pl": "Data końcowa {end} jest wcześniejsza niż początkowa {start}.",
            "en": "The end date {end} is before the start date {start}.",
        },
        "search_min_free_invalid": {
            "pl": "Minimalna ilość „{value}” musi być liczbą nie mniejszą niż 0.",
            "en": "The minimum amount '{value}' must be a number of at least 0.",
        },
        "search_page_invalid": {
            "pl": "Numer strony „{value}” musi być liczbą całkowitą od 1 do {max}.",
            "en": "The page number '{value}' must be a whole number from 1 to {max}.",
        },
        "col_offer": {"pl": "Oferta", "en": "Offer"},
        "col_member": {"pl": "Członek", "en": "Member"},
        "col_connection": {"pl": "Połączenie", "en": "Connection"},
        "col_timeline": {"pl": "Wolne terminy (14 dni)", "en": "Free intervals (14 days)"},
        "timeline_label": {"pl": "Oś czasu wolnych terminów", "en": "Timeline of free intervals"},
        "timeline_now": {"pl": "teraz", "en": "now"},
        "pagination": {"pl": "Strony wyników", "en": "Result pages"},
        "page_previous": {"pl": "« Poprzednia", "en": "« Previous"},
        "page_next": {"pl": "Następna »", "en": "Next »"},
        "page_of": {"pl": "Strona {page} z {pages}", "en": "Page {page} of {pages}"},
        "not_found_title": {"pl": "Nie znaleziono", "en": "Not found"},
        "not_found_text": {
            "pl": "Ta strona nie istnieje albo nie jest dla Ciebie dostępna.",
            "en": "This page does not exist or is not available to you.",
        },
        "forbidden_title": {"pl": "Brak dostępu", "en": "Access denied"},
        "forbidden_text": {
            "pl": "Ta strona jest dostępna tylko dla koordynatora klastra.",
            "en": "This page is available to the cluster coordinator only.",
        },
        "offer_amounts": {"pl": "Ilości", "en": "Amounts"},
        "offer_capabilities": {"pl": "Możliwości", "en": "Capabilities"},
        "offer_timeline": {"pl": "Wolne terminy", "en": "Free intervals"},
        "offer_ics": {
            "pl": "Kalendarz wolnych terminów (.ics)",
            "en": "Free intervals calendar (.ics)",
        },
        "offer_ics_hint": {
            "pl": "Link jest podpisany dla Ciebie; nie przekazuj go innym.",
            "en": "The link is signed for you; do not pass it on.",
        },
        "offer_history": {"pl": "Historia oferty", "en": "Offer history"},
        "offer_history_count": {
            "pl": "Otrzymane wersje: {total}",
            "en": "Versions received: {total}",
        },
        "history_generated": {"pl": "Utworzona", "en": "Generated"},
        "history_received": {"pl": "Otrzymana", "en": "Received"},
        "csv_cluster": {"pl": "klaster", "en": "cluster"},
        "csv_member": {"pl": "członek", "en": "member"},
        "csv_resource": {"pl": "zasób", "en": "resource"},
        "csv_name": {"pl": "nazwa", "en": "name"},
        "csv_kind": {"pl": "rodzaj", "en": "kind"},
        "csv_capabilities": {"pl": "możliwości", "en": "capabilities"},
        "csv_state": {"pl": "stan", "en": "state"},
        "csv_free_hours": {"pl": "wolne godziny", "en": "free hours"},
        "csv_free_hours_band": {"pl": "wolne godziny (przedział)", "en": "free hours (band)"},
        "csv_amounts": {"pl": "ilości", "en": "amounts"},
        "csv_next_free_start": {"pl": "najbliższy wolny od (UTC)", "en": "next free from (UTC)"},
        "csv_next_free_end": {"pl": "najbliższy wolny do (UTC)", "en": "next free to (UTC)"},
        "csv_updated": {"pl": "aktualizacja (UTC)", "en": "updated (UTC)"},
        "csv_generated": {"pl": "utworzona (UTC)", "en": "generated (UTC)"},
        "csv_received": {"pl": "otrzymana (UTC)", "en": "received (UTC)"},
        "offer_history_csv": {
            "pl": "Pobierz historię jako CSV (najwyżej {limit} wersji)",
            "en": "Download the history as CSV (at most {limit} versions)",
        },
        "members_title": {"pl": "Członkowie klastra", "en": "Cluster members"},
        "col_name": {"pl": "Nazwa", "en": "Name"},
        "col_region": {"pl": "Województwo", "en": "Voivodeship"},
        "col_city": {"pl": "Miejscowość", "en": "City"},
        "col_offers": {"pl": "Oferty", "en": "Offers"},
        "members_empty": {"pl": "Brak członków do pokazania.", "en": "No members to show."},
        "profile_contact": {"pl": "Kontakt", "en": "Contact"},
        "profile_description": {"pl": "Opis", "en": "Description"},
        "profile_capabilities": {"pl": "Możliwości", "en": "Capabilities"},
        "profile_offers": {"pl": "Oferty", "en": "Offers"},
        "profile_no_profile": {
            "pl": "Koordynator nie uzupełnił jeszcze profilu tego członka.",
            "en": "The coordinator has not filled in this member's profile yet.",
        },
        "coordinator_title": {"pl": "Widok koordynatora", "en": "Coordinator view"},
        "stats_members": {"pl": "Członkowie", "en": "Members"},
        "stats_online": {"pl": "Połączeni teraz", "en": "Online now"},
        "stats_offers_per_kind": {"pl": "Oferty według rodzaju", "en": "Offers per kind"},
        "stats_free_week": {
            "pl": "Wolne godziny maszyn w ciągu 7 dni",
            "en": "Free machine hours in the next 7 days",
        },
        "stats_connections": {"pl": "Połączenia członków", "en": "Members' connections"},
        "stats_rejected": {"pl": "Ostatnie odrzucone wiadomości", "en": "Latest rejected messages"},
        "stats_capacity": {
            "pl": "Wolne godziny maszyn w klastrze, dziennie (ostatnie {days} dni)",
            "en": "Free machine hours in the cluster per day (last {days} days)",
        },
        "stats_capacity_empty": {
            "pl": "Brak historii ofert maszyn w tym okresie.",
            "en": "No machine offer history in this period.",
        },
        "col_reason": {"pl": "Powód", "en": "Reason"},
        "col_topic": {"pl": "Temat", "en": "Topic"},
        "col_time": {"pl": "Czas", "en": "Time"},
        "col_payload": {"pl": "Treść (początek)", "en": "Payload (excerpt)"},
        "rejected_empty": {"pl": "Brak odrzuconych wiadomości.", "en": "No rejected messages."},
        # Accounts
        "login_title": {"pl": "Logowanie", "en": "Sign in"},
        "login_intro": {
            "pl": "Zaloguj się kontem, które założył Ci koordynator klastra.",
            "en": "Sign in with the account the cluster coordinator created for you.",
        },
        "login_username": {"pl": "Nazwa użytkownika", "en": "User name"},
        "login_password": {"pl": "Hasło", "en": "Password"},
        "login_submit": {"pl": "Zaloguj", "en": "Sign in"},
        "login_invalid": {
            "pl": "Nieprawidłowa nazwa użytkownika lub hasło.",
            "en": "Invalid user name or password.",
        },
        "login_locked": {
            "pl": "Zbyt wiele nieudanych prób logowania. Spróbuj ponownie za {minutes} min.",
            "en": "Too many failed sign-in attempts. Try again in {minutes} min.",
        },
        "password_title": {"pl": "Zmiana hasła", "en": "Change password"},
        "password_forced": {
            "pl": "To hasło było jednorazowe. Ustaw własne hasło, aby korzystać z panelu.",
            "en": "This password was a one-time password. Set your own to use the dashboard.",
        },
        "password_rules": {
            "pl": "Nowe hasło musi mieć co najmniej {min} znaków i różnić się od nazwy "
            "użytkownika. Po zmianie pozostałe sesje zostaną wylogowane.",
            "en": "The new password needs at least {min} characters and must differ from the "
            "user name. Changing it signs out your other sessions.",
        },
        "password_current": {"pl": "Obecne hasło", "en": "Current password"},
        "password_new": {"pl": "Nowe hasło", "en": "New password"},
        "password_repeat": {"pl": "Powtórz nowe hasło", "en": "Repeat the new password"},
        "password_submit": {"pl": "Zmień hasło", "en": "Change password"},
        "password_current_wrong": {
            "pl": "Obecne hasło jest nieprawidłowe.",
            "en": "The current password is wrong.",
        },
        "password_mismatch": {
            "pl": "Powtórzone hasło różni się od nowego hasła.",
            "en": "The repeated password differs from the new password.",
        },
        "password_unchanged": {
            "pl": "Nowe hasło musi różnić się od obecnego.",
            "en": "The new password must differ from the current one.",
        },
        "password_too_short": {
            "pl": "Hasło jest za krótkie: wymagane co najmniej {min} znaków.",
            "en": "The password is too short: it needs at least {min} characters.",
        },
        "password_is_username": {
            "pl": "Hasło nie może być takie samo jak nazwa użytkownika.",
            "en": "The password must not be the same as the user name.",
        },
        "form_rejected_title": {"pl": "Odrzucony formularz", "en": "Form rejected"},
        "form_rejected": {
            "pl": "Formularz nie pochodzi z tej strony albo jego sesja wygasła. Otwórz stronę "
            "ponownie i wyślij formularz jeszcze raz.",
            "en": "The form did not come from this site or its session has expired. Open the "
            "page again and send the form once more.",
        },
        "coordinator_only_title": {"pl": "Brak dostępu", "en": "Access denied"},
        "coordinator_only": {
            "pl": "Tę stronę może otworzyć tylko koordynator klastra.",
            "en": "Only the cluster coordinator can open this page.",
        },
        "account_not_found_title": {"pl": "Nie znaleziono konta", "en": "Account not found"},
        "account_not_found": {
            "pl": "Członek {member} nie ma konta w tym klastrze.",
            "en": "Member {member} has no account in this cluster.",
        },
        "back_to_search": {"pl": "Wróć do wyszukiwania", "en": "Back to search"},
        "member_created_title": {"pl": "Członek dodany", "en": "Member added"},
        "member_created": {
            "pl": "Dodano członka i jego konto {username}. Przekaż mu poniższe hasło "
            "jednorazowe bezpiecznym kanałem.",
            "en": "The member and its account {username} were added. Give the member the "
            "one-time password below over a secure channel.",
        },
        "password_reset_title": {"pl": "Hasło zresetowane", "en": "Password reset"},
        "password_reset": {
            "pl": "Konto {username} ma nowe hasło jednorazowe; jego sesje zostały zakończone.",
            "en": "Account {username} has a new one-time password; its sessions were ended.",
        },
        "one_time_password": {"pl": "Hasło jednorazowe", "en": "One-time password"},
        "one_time_password_note": {
            "pl": "Hasło jest pokazywane tylko raz. Przy pierwszym logowaniu trzeba je zmienić.",
            "en": "The password is shown only once. It must be changed at the first sign-in.",
        },
        "accounts_title": {"pl": "Konta członków", "en": "Member accounts"},
        "accounts_intro": {
            "pl": "Konta panelu w klastrze {cluster}.",
            "en": "Dashboard accounts in cluster {cluster}.",
        },
        "accounts_role": {"pl": "Rola", "en": "Role"},
        "accounts_member": {"pl": "Członek", "en": "Member"},
        "accounts_state": {"pl": "Stan", "en": "State"},
        "accounts_active": {"pl": "aktywne", "en": "active"},
        "accounts_must_change": {"pl": "czeka na zmianę hasła", "en": "awaiting password change"},
        "accounts_disabled": {"pl": "wyłączone", "en": "disabled"},
        "accounts_reset": {"pl": "Nowe hasło", "en": "Reset password"},
        "accounts_disable": {"pl": "Wyłącz", "en": "Disable"},
        "role_member": {"pl": "członek", "en": "member"},
        "role_coordinator": {"pl": "koordynator", "en": "coordinator"},
        "member_new_title": {"pl": "Nowy członek", "en": "New member"},
        "member_new_intro": {
            "pl": "Dodaje członka do klastra {cluster} wraz z profilem i pierwszym kontem. "
            "Dane brokera MQTT dla agenta tworzy polecenie kooperant server add-member.",
            "en": "Adds a member to cluster {cluster} with its profile and first account. "
            "The agent's MQTT broker credentials come from kooperant server add-member.",
        },
        "member_new_id": {
            "pl": "Identyfikator członka (litery, cyfry, „.”, „_”, „-”)",
            "en": "Member id (letters, digits, '.', '_', '-')",
        },
        "member_new_name": {"pl": "Nazwa firmy", "en": "Company name"},
        "member_new_email": {"pl": "E-mail kontaktowy", "en": "Contact e-mail"},
        "member_new_phone": {"pl": "Telefon kontaktowy", "en": "Contact phone"},
        "member_new_voivodeship": {"pl": "Województwo", "en": "Voivodeship"},
        "member_new_city": {"pl": "Miejscowość", "en": "City"},
        "member_new_username": {
            "pl": "Nazwa użytkownika (domyślnie identyfikator członka)",
            "en": "User name (the member id by default)",
        },
        "member_new_submit": {"pl": "Dodaj członka", "en": "Add member"},
        "username_invalid": {
            "pl": "Nieprawidłowa nazwa użytkownika {value!r}: dozwolone są małe litery, cyfry, "
            "„.”, „_”, „-” i „@” (1–64 znaki, na początku litera lub cyfra).",
            "en": "Invalid user name {value!r}: use 1 to 64 lowercase letters, digits, '.', "
            "'_', '-' or '@', starting with a letter or digit.",
        },
        "user_role_invalid": {
            "pl": "Nieznana rola {value!r}: podaj member albo coordinator.",
            "en": "Unknown role {value!r}: use member or coordinator.",
        },
        "user_member_missing": {
            "pl": "Konto {username} z rolą member wymaga członka: podaj --member.",
            "en": "Account {username} with role member needs a member: pass --member.",
        },
        "user_exists": {
            "pl": "Nazwa użytkownika {username} jest już zajęta. Wybierz inną.",
            "en": "The user name {username} is already taken. Choose another one.",
        },
        "user_member_other_cluster": {
            "pl": "Członek {member} należy do innego klastra niż {cluster}. Sprawdź --cluster.",
            "en": "Member {member} belongs to a cluster other than {cluster}. Check --cluster.",
        },
        "user_member_unknown": {
            "pl": "Członek {member} nie jest znany w klastrze {cluster}. Najpierw zarejestruj "
            "go poleceniem kooperant server add-member.",
            "en": "Member {member} is not known in cluster {cluster}. Register it first with "
            "kooperant server add-member.",
        },
        "member_exists": {
            "pl": "Członek {member} jest już zarejestrowany w klastrze {cluster}.",
            "en": "Member {member} is already registered in cluster {cluster}.",
        },
        "profile_name_too_long": {
            "pl": "Nazwa firmy jest za długa: dozwolone najwyżej {max} znaków.",
            "en": "The company name is too long: at most {max} characters.",
        },
        "profile_email_invalid": {
            "pl": "Nieprawidłowy adres e-mail {value!r}, np. biuro@firma.pl.",
            "en": "Invalid e-mail address {value!r}; use e.g. office@company.pl.",
        },
        "profile_phone_invalid": {
            "pl": "Nieprawidłowy numer telefonu {value!r}: dozwolone są cyfry, spacje, „+”, "
            "„-” i nawiasy, np. +48 58 123 45 67.",
            "en": "Invalid phone number {value!r}: use digits, spaces, '+', '-' and "
            "brackets, e.g. +48 58 123 45 67.",
        },
        "profile_voivodeship_invalid": {
            "pl": "Nieznane województwo {value!r}. Dozwolone kody: {codes}.",
            "en": "Unknown voivodeship {value!r}. Allowed codes: {codes}.",
        },
        "profile_city_too_long": {
            "pl": "Nazwa miejscowości jest za długa: dozwolone najwyżej {max} znaków.",
            "en": "The city name is too long: at most {max} characters.",
        },
        "cli_add_user_help": {
            "pl": "Dodaje konto panelu (członka albo koordynatora). Bez --password-file tworzy "
            "hasło jednorazowe, wypisuje je raz i wymusza jego zmianę przy pierwszym logowaniu.",
            "en": "Add a dashboard account (member or coordinator). Without --password-file it "
            "creates a one-time password, prints it once and requires a change at first "
            "sign-in.",
        },
        "opt_user_username": {"pl": "Nazwa użytkownika.", "en": "User name."},
        "opt_user_role": {
            "pl": "Rola: member albo coordinator.",
            "en": "Role: member or coordinator.",
        },
        "opt_user_cluster": {"pl": "Klaster konta.", "en": "Cluster of the account."},
        "opt_user_member": {
            "pl": "Członek, którego oferty widzi konto (wymagany dla roli member).",
            "en": "Member whose view of offers the account gets (required for role member).",
        },
        "opt_user_password_file": {
            "pl": "Plik, którego pierwszy wiersz jest hasłem konta.",
            "en": "File whose first line is the account's password.",
        },
        "opt_user_display_name": {
            "pl": "Nazwa wyświetlana w panelu (domyślnie nazwa użytkownika).",
            "en": "Name the dashboard shows (the user name by default).",
        },
        "user_created": {
            "pl": "Dodano konto {username} (rola {role}, klaster {cluster}) w bazie {url}.",
            "en": "Added account {username} (role {role}, cluster {cluster}) to {url}.",
        },
        "user_password_once": {
            "pl": "Hasło jednorazowe poniżej jest pokazywane tylko raz; trzeba je zmienić przy "
            "pierwszym logowaniu.",
            "en": "The one-time password below is shown only once; it must be changed at the "
            "first sign-in.",
        },
        "user_password_file_unreadable": {
            "pl": "Nie można odczytać pliku hasła {path}: {detail}.",
            "en": "Cannot read the password file {path}: {detail}.",
        },
        "opt_profile_name": {"pl": "Nazwa firmy członka.", "en": "The member's company name."},
        "opt_profile_email": {"pl": "E-mail kontaktowy.", "en": "Contact e-mail."},
        "opt_profile_phone": {"pl": "Telefon kontaktowy.", "en": "Contact phone."},
        "opt_profile_voivodeship": {
            "pl": "Kod województwa, np. pomorskie albo slaskie.",
            "en": "Voivodeship code, e.g. pomorskie or slaskie.",
        },
        "opt_profile_city": {"pl": "Miejscowość.", "en": "City."},
        "member_profile_saved": {
            "pl": "Zapisano profil członka {member} (klaster {cluster}).",
            "en": "Saved the profile of member {member} (cluster {cluster}).",
        },
    }
)
