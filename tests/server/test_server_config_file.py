"""``--config server.yaml`` and ``KOOPERANT_SERVER_*``: precedence, bad files and secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from kooperant.i18n import use_language
from server.cli import app as server_app
from server.config_file import ConfigOption, ConfigurableCommand

SECRET = "tajne-Haslo-7"


def invoke(*arguments: str, env: dict[str, str] | None = None) -> Result:
    with use_language("en"):
        return CliRunner().invoke(server_app, list(arguments), env=env)


def write(folder: Path, text: str) -> Path:
    path = folder / "server.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def sqlite(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / name}"


def test_file_value_used(tmp_path: Path) -> None:
    config = write(tmp_path, f"database: {sqlite(tmp_path, 'file.db')}\n")

    result = invoke("migrate", "--config", str(config))

    assert result.exit_code == 0, result.output
    assert (tmp_path / "file.db").is_file()


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = write(tmp_path, f"database: {sqlite(tmp_path, 'file.db')}\n")

    result = invoke("migrate", env={"KOOPERANT_SERVER_CONFIG": str(config)})

    assert result.exit_code == 0, result.output
    assert (tmp_path / "file.db").is_file()


def test_environment_beats_file(tmp_path: Path) -> None:
    config = write(tmp_path, f"database: {sqlite(tmp_path, 'file.db')}\n")
    env = {"KOOPERANT_SERVER_DATABASE": sqlite(tmp_path, "env.db")}

    result = invoke("migrate", "--config", str(config), env=env)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").is_file()
    assert not (tmp_path / "file.db").exists()


def test_option_beats_environment(tmp_path: Path) -> None:
    config = write(tmp_path, f"database: {sqlite(tmp_path, 'file.db')}\n")
    env = {"KOOPERANT_SERVER_DATABASE": sqlite(tmp_path, "env.db")}

    result = invoke(
        "migrate", "--config", str(config), "--database", sqlite(tmp_path, "option.db"), env=env
    )

    assert result.exit_code == 0, result.output
    assert (tmp_path / "option.db").is_file()
    assert not (tmp_path / "env.db").exists()
    assert not (tmp_path / "file.db").exists()


def test_key_of_other_command_ignored(tmp_path: Path) -> None:
    text = f"database: {sqlite(tmp_path, 'file.db')}\nport: 9000\ntrusted_proxy: [10.0.0.1]\n"
    config = write(tmp_path, text)

    result = invoke("migrate", "--config", str(config))

    assert result.exit_code == 0, result.output


def test_every_option_has_environment_variable() -> None:
    command = typer.main.get_command(server_app)
    assert isinstance(command, typer.core.TyperGroup)

    for name in ("run", "ingest", "migrate"):
        for param in command.commands[name].params:
            if param.name in ("help", "config"):
                continue
            assert param.envvar == f"KOOPERANT_SERVER_{param.name.upper()}", param.name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "database: sqlite:///x.db\ncolour: red\n",
            "{path}:2: colour: unknown key; known keys: broker, broker_ca_file,",
        ),
        ("prot: 1\n", "{path}:1: prot: unknown key; did you mean port? Correct or remove it."),
        ("port: abc\n", "{path}:1: port: 'abc' is not a whole number"),
        ("port: 70000\n", "{path}:1: port: 70000 is above the maximum 65535"),
        ("port: true\n", "{path}:1: port: expected a number, not true/false."),
        (
            "trusted_proxy: 10.0.0.1\n",
            "{path}:1: trusted_proxy: expected a list, such as [10.0.0.1, 10.0.0.0/8].",
        ),
        ("host:\n  a: 1\n", "{path}:1: host: expected a single value (text, number or"),
        ("- port\n- 9000\n", "{path}:1: the file must contain key: value pairs"),
        ("just text\n", "{path}:1: the file must contain key: value pairs"),
        ("port: 1\nport: 2\n", "{path}:2: port: the key is repeated; keep one of them."),
        ("port: [1\n", "{path}:2: invalid YAML:"),
    ],
)
def test_bad_file_named_with_line(tmp_path: Path, text: str, expected: str) -> None:
    config = write(tmp_path, text)

    result = invoke("run", "--config", str(config))

    assert result.exit_code == 2
    assert result.stderr.startswith(expected.format(path=config)), result.stderr


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"

    result = invoke("migrate", "--config", str(missing))

    assert result.exit_code == 2
    assert result.stderr == (
        f"Config file {missing} not found; check the --config path or KOOPERANT_SERVER_CONFIG.\n"
    )


def test_folder_as_file(tmp_path: Path) -> None:
    result = invoke("migrate", "--config", str(tmp_path))

    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_empty_file_accepted(tmp_path: Path) -> None:
    config = write(tmp_path, "# nothing set yet\n")

    result = invoke("migrate", "--config", str(config), "--database", sqlite(tmp_path, "k.db"))

    assert result.exit_code == 0, result.output


def test_help_hides_database_password(tmp_path: Path) -> None:
    database = f"postgresql://kooperant:{SECRET}@db.example:5432/kooperant"
    config = write(tmp_path, f"database: {database}\n")

    # A wide terminal keeps rich from wrapping the variable names inside its boxes.
    env = {"KOOPERANT_SERVER_DATABASE": database, "COLUMNS": "400"}

    result = invoke("run", "--config", str(config), "--help", env=env)

    assert result.exit_code == 0
    assert "KOOPERANT_SERVER_DATABASE" in result.output
    assert SECRET not in result.output


def test_bad_value_error_hides_database_password(tmp_path: Path) -> None:
    config = write(tmp_path, f"database: postgresql://kooperant:{SECRET}@db.example:99999/k\n")

    result = invoke("migrate", "--config", str(config))

    assert result.exit_code != 0
    assert SECRET not in result.output


def test_broker_password_from_environment(tmp_path: Path) -> None:
    result = invoke(
        "ingest",
        "--database",
        sqlite(tmp_path, "k.db"),
        "--broker",
        "mqtt://127.0.0.1:1",
        env={"KOOPERANT_BROKER_PASSWORD": SECRET},
    )

    # A password without a user name is rejected, so the variable was read.
    assert result.exit_code == 2
    assert "password" in result.stderr
    assert "--broker-username" in result.stderr
    assert SECRET not in result.output


def test_broker_password_twice(tmp_path: Path) -> None:
    password_file = tmp_path / "broker-password"
    password_file.write_text(SECRET + "\n", encoding="utf-8")

    result = invoke(
        "ingest",
        "--database",
        sqlite(tmp_path, "k.db"),
        "--broker",
        "mqtt://127.0.0.1:1",
        "--broker-username",
        "aggregator",
        "--broker-password-file",
        str(password_file),
        env={"KOOPERANT_BROKER_PASSWORD": SECRET},
    )

    assert result.exit_code == 2
    assert result.stderr == (
        "The broker password was given both in KOOPERANT_BROKER_PASSWORD and with "
        f"--broker-password-file {password_file}; keep only one.\n"
    )


def new_option_app(seen: list[int]) -> typer.Typer:
    """An app with an option that the config file module has never heard of."""
    app = typer.Typer()

    @app.command(cls=ConfigurableCommand)
    def serve(
        config: Path | None = ConfigOption,
        metrics_port: int = typer.Option(9100, "--metrics-port", min=1, max=65535),
    ) -> None:
        seen.append(metrics_port)

    @app.command()
    def other() -> None:
        """Keep ``serve`` a sub-command."""

    return app


@pytest.mark.parametrize(
    ("arguments", "env", "expected"),
    [
        ((), {}, 9100),
        (("--config", "{config}"), {}, 9200),
        (("--config", "{config}"), {"KOOPERANT_SERVER_METRICS_PORT": "9300"}, 9300),
        (
            ("--config", "{config}", "--metrics-port", "9400"),
            {"KOOPERANT_SERVER_METRICS_PORT": "9300"},
            9400,
        ),
    ],
)
def test_new_option_gets_file_and_environment(
    tmp_path: Path, arguments: tuple[str, ...], env: dict[str, str], expected: int
) -> None:
    config = write(tmp_path, "metrics_port: 9200\n")
    seen: list[int] = []
    command_line = ["serve", *(part.format(config=config) for part in arguments)]

    result = CliRunner().invoke(new_option_app(seen), command_line, env=env)

    assert result.exit_code == 0, result.output
    assert seen == [expected]


def test_misspelt_variable_rejected(tmp_path: Path) -> None:
    env = {"KOOPERANT_SERVER_PROT": "1", "KOOPERANT_SERVER_DATABASE": sqlite(tmp_path, "k.db")}

    result = invoke("migrate", env=env)

    assert result.exit_code == 2
    assert "KOOPERANT_SERVER_PROT" in result.output
    assert "Did you mean KOOPERANT_SERVER_PORT?" in result.output
    assert not (tmp_path / "k.db").exists()


def test_unlike_variable_rejected_without_suggestion(tmp_path: Path) -> None:
    env = {"KOOPERANT_SERVER_XYZZY": "1", "KOOPERANT_SERVER_DATABASE": sqlite(tmp_path, "k.db")}

    result = invoke("migrate", env=env)

    assert result.exit_code == 2
    assert "KOOPERANT_SERVER_XYZZY" in result.output
    assert "Did you mean" not in result.output
    assert "KOOPERANT_SERVER_PORT for --port" in result.output


def test_sibling_variable_accepted(tmp_path: Path) -> None:
    # --metrics-port is an option of ingest only; migrate shares the environment with it.
    env = {
        "KOOPERANT_SERVER_METRICS_PORT": "9100",
        "KOOPERANT_SERVER_DATABASE": sqlite(tmp_path, "k.db"),
    }

    result = invoke("migrate", env=env)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "k.db").is_file()


def test_help_with_misspelt_variable(tmp_path: Path) -> None:
    result = invoke("migrate", "--help", env={"KOOPERANT_SERVER_PROT": "1"})

    assert result.exit_code == 0, result.output


def invoke_in(language: str, *arguments: str, env: dict[str, str] | None = None) -> Result:
    with use_language(language):  # type: ignore[arg-type]
        return CliRunner().invoke(server_app, list(arguments), env=env)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "server.yaml:1: port: 'abc' is not a whole number"),
        ("pl", "server.yaml:1: port: 'abc' nie jest liczbą całkowitą"),
    ],
)
def test_file_type_error_translated(tmp_path: Path, language: str, expected: str) -> None:
    config = write(tmp_path, "port: abc\n")

    result = invoke_in(language, "run", "--config", str(config))

    assert result.exit_code == 2
    assert expected in result.output
    assert "Input should be" not in result.output


def test_variable_type_error_names_variable(tmp_path: Path) -> None:
    config = write(tmp_path, f"database: {sqlite(tmp_path, 'k.db')}\n")

    # A wide terminal keeps rich from wrapping the message inside its box.
    env = {"KOOPERANT_SERVER_PORT": "abc", "COLUMNS": "200"}

    result = invoke_in("pl", "run", "--config", str(config), env=env)

    assert result.exit_code == 2
    assert "KOOPERANT_SERVER_PORT (--port)" in result.output
    assert "'abc' nie jest liczbą całkowitą" in result.output


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "KOOPERANT_SERVER_HISTORY_RETENTION_DAYS",
            "-1",
            "(The value of --history-retention-days was set in "
            "KOOPERANT_SERVER_HISTORY_RETENTION_DAYS.)",
        ),
        (
            "KOOPERANT_SERVER_TRUSTED_PROXY",
            "not-an-ip",
            "(The value of --trusted-proxy was set in KOOPERANT_SERVER_TRUSTED_PROXY.)",
        ),
        (
            "KOOPERANT_SERVER_BROKER",
            "http://x",
            "(The value of --broker was set in KOOPERANT_SERVER_BROKER.)",
        ),
        (
            "KOOPERANT_SERVER_PUBLIC_URL",
            "ftp://x",
            "(The value of --public-url was set in KOOPERANT_SERVER_PUBLIC_URL.)",
        ),
    ],
)
def test_setting_error_names_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    config = write(tmp_path, f"database: {sqlite(tmp_path, 'k.db')}\n")

    result = invoke("run", "--config", str(config), env={variable: value})

    assert result.exit_code == 2
    assert expected in result.output


def test_database_url_error_names_file_line(tmp_path: Path) -> None:
    config = write(tmp_path, "port: 18999\ndatabase: mysql://x/y\n")

    result = invoke("run", "--config", str(config))

    assert result.exit_code == 2
    assert f"(The value of --database was set in {config}:2 (database).)" in result.output


def test_setting_error_from_option_has_no_note(tmp_path: Path) -> None:
    result = invoke("run", "--database", sqlite(tmp_path, "k.db"), "--history-retention-days", "-1")

    assert result.exit_code == 2
    assert "--history-retention-days" in result.output
    assert "was set in" not in result.output


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "it is a folder, not a file."),
        ("pl", "to folder, a nie plik."),
    ],
)
def test_password_folder_names_file_line(tmp_path: Path, language: str, expected: str) -> None:
    config = write(
        tmp_path,
        f"database: {sqlite(tmp_path, 'k.db')}\nbroker_password_file: {tmp_path}\n",
    )

    result = invoke_in(language, "run", "--config", str(config))

    assert result.exit_code == 2
    assert expected in result.output
    assert f"{config}:2 (broker_password_file)" in result.output


def test_password_twice_names_file_line(tmp_path: Path) -> None:
    password_file = tmp_path / "password.txt"
    password_file.write_text("secret\n", encoding="utf-8")
    config = write(
        tmp_path,
        f"database: {sqlite(tmp_path, 'k.db')}\nbroker_password_file: {password_file}\n",
    )

    result = invoke("run", "--config", str(config), env={"KOOPERANT_BROKER_PASSWORD": "x"})

    assert result.exit_code == 2
    assert "KOOPERANT_BROKER_PASSWORD" in result.output
    assert f"{config}:2 (broker_password_file)" in result.output


def test_variable_range_error_translated(tmp_path: Path) -> None:
    config = write(tmp_path, f"database: {sqlite(tmp_path, 'k.db')}\n")
    env = {"KOOPERANT_SERVER_PORT": "0", "COLUMNS": "200"}

    result = invoke_in("pl", "run", "--config", str(config), env=env)

    assert result.exit_code == 2
    assert "KOOPERANT_SERVER_PORT (--port): '0' jest poniżej minimum 1" in result.output
