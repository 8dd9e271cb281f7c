"""A throw-away PostgreSQL server for the tests: one per session (conftest's `pg_server`),
started from Debian's `postgresql` binaries (initdb and postgres: on PATH, else the newest
/usr/lib/postgresql/*/bin), into a directory of the session's, listening on 127.0.0.1 at a free
port and on a unix socket in that directory; stopped (fast shutdown) when the session ends.

initdb and postgres refuse to run as root: as root they run in a user namespace of their own
(`unshare --user`) as uid 65534 there, which is root outside, so they can reach the session's
0700 directories and nothing more than the files they make.

Each test that wants a database calls `server.fresh_url()` (the `pg_url` fixture): a schema of
its own in the database `cronplus`, owned by the login role `cronplus` (password-authenticated
over TCP: every store test goes through the credentials path), dropped after the test.

A test that stops the server (a database restart, issue 14) starts one of its own with
`start_server(a directory of its own)`, then `stop()` / `start_again()` (same port and data);
never the session's, which other tests use at the same time.

No binaries: a skip saying so, but in CI (CI=true) a failure, as is any server that does not start.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

ADMIN = "cronplus_admin"  # the superuser: unix socket, trust
ROLE = "cronplus"  # what the stores log in as: TCP, scram-sha-256
DATABASE = "cronplus"
START_TIMEOUT_S = 60.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find_bindir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).resolve().parent
    found = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            version = re.match(r"\d+", bindir.parent.name)
            found.append((int(version.group()) if version else 0, bindir))
    return max(found)[1] if found else None


def _as_non_root() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["unshare", "--user", "--map-user=65534", "--map-group=65534", "--"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    def __init__(self, base: Path, bindir: Path, *, durable: bool = False) -> None:
        self.base = base
        self.bindir = bindir
        self.durable = durable  # fsync etc. as a production server has them (bench/bench_cluster.py)
        self.data = base / "data"
        self.sockets = base / "run"
        self.log = base / "postgres.log"
        self.password = secrets.token_hex(12)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.sockets.mkdir(parents=True)
        pwfile = self.base / "admin.pw"
        pwfile.write_text(secrets.token_hex(12) + "\n")
        subprocess.run([*_as_non_root(), str(self.bindir / "initdb"), "-D", str(self.data), "-U", ADMIN,
                        f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                        "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        for _ in range(3):  # a free port may be taken by someone else before we bind it
            self.port = _free_port()
            if self._launch():
                break
        else:
            raise RuntimeError(f"PostgreSQL did not start; its log ({self.log}):\n{self.log.read_text()[-3000:]}")
        self.admin_sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        self.admin_sql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")

    def _launch(self) -> bool:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*_as_non_root(), str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.sockets}",
                 *([] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                            "-c", "full_page_writes=off"]),
                 "-c", "max_connections=60", "-c", "shared_buffers=16MB"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return self._wait_ready()

    def start_again(self) -> None:
        """After `stop()`: the same server (data, port, roles) up again, as after a restart. Only
        for a server of one test's own (`start_server(private_dir)`): the session's is shared."""
        if not self._launch():
            raise RuntimeError(f"PostgreSQL did not start again; its log ({self.log}):\n{self.log.read_text()[-3000:]}")

    def _wait_ready(self) -> bool:
        import psycopg

        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # exited: the port was taken, or worse (the log says)
            try:
                psycopg.connect(self.admin_dsn(), connect_timeout=5).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        return False

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.sockets} port={self.port} user={ADMIN} dbname={dbname}"

    def admin_sql(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.admin_dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(sql.encode())
            return cur.fetchall() if cur.description else []

    def url(self, *, schema: str | None = None, password: str | None = None, user: str = ROLE) -> str:
        secret = self.password if password is None else password
        auth = f"{user}:{quote(secret, safe='')}@" if secret else f"{user}@"
        options = f"?options={quote(f'-csearch_path={schema}', safe='')}" if schema else ""
        return f"postgresql://{auth}127.0.0.1:{self.port}/{DATABASE}{options}"

    def new_schema(self, owner: str = ROLE) -> str:
        name = f"t_{secrets.token_hex(6)}"
        self.admin_sql(f"CREATE SCHEMA {name} AUTHORIZATION {owner}", DATABASE)
        return name

    def drop_schema(self, name: str) -> None:
        self.admin_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE", DATABASE)

    def new_role(self) -> tuple[str, str]:
        """A login role of a test's own (to lock it out without touching the others): name, password."""
        name, password = f"r_{secrets.token_hex(6)}", secrets.token_hex(12)
        self.admin_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        return name, password

    def drop_role(self, name: str) -> None:
        self.admin_sql(f"DROP ROLE IF EXISTS {name}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown: clients are disconnected
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(base: Path) -> PgServer:
    """The session's server, or a skip (locally, no binaries) / failure (CI, or it did not start)."""
    bindir = find_bindir()
    if bindir is None:
        reason = ("no PostgreSQL server binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin:"
                  " apt-get install postgresql")
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    server = PgServer(base, bindir)
    try:
        server.start()
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        server.stop()
        detail = exc.stderr.decode(errors="replace")[-2000:] if isinstance(exc, subprocess.CalledProcessError) else ""
        pytest.fail(f"could not start the test PostgreSQL server from {bindir}: {exc}\n{detail}", pytrace=False)
    return server
