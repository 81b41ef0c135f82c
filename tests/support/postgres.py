"""A PostgreSQL server of the test's own, on a free loopback port.

Tests that stop, kill or restart the database use this instead of the machine's PostgreSQL on
port 5432. The newest server found in ``/usr/lib/postgresql/*/bin`` is used; without one,
``OwnPostgres`` skips the test (or fails it under ``KOOPERANT_REQUIRE_SERVICES=1``).

initdb refuses to run as root. When the tests run as root, the cluster is made and run as the
``postgres`` system user (through ``runuser``), in a folder of its own below the system temp
folder, because pytest's ``tmp_path`` is private to root. That folder is removed by ``remove``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import psycopg.sql
import pytest

from kooperant.net import free_tcp_port

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
DATABASE = "kooperant"
SYSTEM_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """Return the ``bin`` folder of the newest installed PostgreSQL, or ``None``."""
    found = [
        path
        for path in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/"))
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    if not found:
        return None
    return max(found, key=lambda path: _major_version(path.parent.name))


def _major_version(name: str) -> int:
    return int(name) if name.isdigit() else -1


def missing_service(reason: str) -> None:
    """Skip the test with ``reason``, or fail it under ``KOOPERANT_REQUIRE_SERVICES=1``."""
    if os.environ.get("KOOPERANT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (KOOPERANT_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


class OwnPostgres:
    """A PostgreSQL cluster in ``folder`` (or a private folder when root) on ``127.0.0.1:port``.

    The first ``start`` runs initdb and creates the database that ``url`` points at. Later calls
    start the same cluster on the same port, so clients reconnect to the same URL.
    """

    def __init__(self, folder: Path) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            missing_service(f"no PostgreSQL server found in {POSTGRES_BIN_GLOB}")
        assert bin_dir is not None
        self._bin = bin_dir
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                missing_service(f"running as root and no {SYSTEM_USER!r} user to run initdb as")
                raise
            if shutil.which("runuser") is None:
                missing_service("running as root and no runuser program to run initdb as postgres")
            self.root = Path(tempfile.mkdtemp(prefix="kooperant-pg-"))
            os.chown(self.root, account.pw_uid, account.pw_gid)
        else:
            self.root = folder / "postgres"
            self.root.mkdir()
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "server.log"
        self.port = free_tcp_port()
        self._initialised = False

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the test database, with the psycopg 3 driver."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server (initdb and the database on the first call); wait until it accepts."""
        if not self._initialised:
            self._initdb()
        self._run(
            "pg_ctl",
            "start",
            "--silent",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir}",
        )
        self._wait_accepting()
        if not self._initialised:
            with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')
            self._initialised = True

    def require_password(self, password: str) -> None:
        """Give ``postgres`` the ``password`` and make TCP logins check it (scram-sha-256).

        The admin connections of this class then need ``PGPASSWORD`` or a password file.
        """
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(psycopg.sql.SQL("ALTER ROLE postgres PASSWORD {}").format(password))
        rules = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        (self.data_dir / "pg_hba.conf").write_text(rules, encoding="utf-8")
        self._run("pg_ctl", "reload", "--silent", "-D", str(self.data_dir))

    def stop(self) -> None:
        """Stop the server with a fast shutdown: sessions end, data is written to disk."""
        self._pg_ctl_stop("fast")

    def kill(self) -> None:
        """End the server without a checkpoint: SIGKILL to the postmaster and its children.

        The next ``start`` recovers from the WAL, as after a power cut.
        """
        pid = self._postmaster_pid()
        if pid is None:
            return
        # Backends notice a dead postmaster and exit, but a restart fails while one is still
        # attached to the shared memory, so they are killed too.
        for process_id in [pid, *_children(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process_id, signal.SIGKILL)
        self._wait_gone(pid)

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        if self._postmaster_pid() is not None:
            self._pg_ctl_stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _initdb(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        if self._as_root:
            account = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.socket_dir, account.pw_uid, account.pw_gid)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-sync",
        )

    def _pg_ctl_stop(self, mode: str) -> None:
        self._run(
            "pg_ctl",
            "stop",
            "--silent",
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            "-t",
            str(int(STOP_TIMEOUT_SECONDS)),
        )

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(self._bin / program), *arguments]
        if self._as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS, check=False
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(arguments[:2])} failed with exit status "
                f"{result.returncode}: {result.stderr.strip()}\n{log[-2000:]}"
            )

    def _postmaster_pid(self) -> int | None:
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        pid = int(first_line)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def _wait_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise TimeoutError(
            f"PostgreSQL did not accept connections on port {self.port} within "
            f"{START_TIMEOUT_SECONDS:.0f} s; see {self.log_file}"
        )

    def _wait_gone(self, pid: int) -> None:
        # The next postmaster refuses to start while the process named in postmaster.pid
        # exists, so wait until the killed one has been reaped by its parent.
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while Path(f"/proc/{pid}").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the killed postmaster {pid} was not reaped within 30 s")
            time.sleep(0.05)


def _children(pid: int) -> list[int]:
    """Return the ids of the processes whose parent is ``pid`` (Linux ``/proc``)."""
    children = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(status.parent.name))
    return children
