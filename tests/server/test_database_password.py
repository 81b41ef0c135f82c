"""The PostgreSQL password kept out of the database URL: libpq's PGPASSWORD and PGPASSFILE.

psycopg 3 connects through libpq, which reads the password from ``PGPASSWORD`` or from the
password file that ``PGPASSFILE`` names (default ``~/.pgpass``) when the URL has none. These
tests start a PostgreSQL server of their own that checks passwords, because the machine's
server on port 5432 trusts every local login.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kooperant.i18n import use_language
from server.cli import app as server_app
from tests.support.postgres import OwnPostgres

PASSWORD = "tajne-Haslo-7"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path_factory.mktemp("postgres"))
    try:
        server.start()
        server.require_password(PASSWORD)
        # pg_ctl reload returns before the server has read the new pg_hba.conf.
        time.sleep(1)
        yield server
    finally:
        server.remove()


def migrate(database: str, env: dict[str, str]) -> Result:
    with use_language("en"):
        return CliRunner().invoke(server_app, ["migrate", "--database", database], env=env)


def test_without_password_rejected(postgres: OwnPostgres) -> None:
    result = migrate(postgres.url, {"PGPASSWORD": "", "PGPASSFILE": "/nonexistent"})

    assert result.exit_code == 2
    assert "no password supplied" in result.output


def test_pgpassword_used(postgres: OwnPostgres) -> None:
    result = migrate(postgres.url, {"PGPASSWORD": PASSWORD})

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


def test_pgpassfile_used(postgres: OwnPostgres, tmp_path: Path) -> None:
    password_file = tmp_path / "pgpass"
    password_file.write_text(f"127.0.0.1:{postgres.port}:*:postgres:{PASSWORD}\n", "utf-8")
    password_file.chmod(0o600)

    result = migrate(postgres.url, {"PGPASSWORD": "", "PGPASSFILE": str(password_file)})

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


def test_server_yaml_and_pgpassword(postgres: OwnPostgres, tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(f"database: {postgres.url}\n", encoding="utf-8")

    with use_language("en"):
        result = CliRunner().invoke(
            server_app, ["migrate", "--config", str(config)], env={"PGPASSWORD": PASSWORD}
        )

    assert result.exit_code == 0, result.output
