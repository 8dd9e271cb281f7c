"""One way to open a store (cronplus/store/open.py) and the `--db URL|PATH` / CRONPLUS_DB option of
`run` and the commands that read history (SPEC §9): the commands in-process (tests/incli.py),
the supervisor as the real command."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from cronplus.paths import resolve
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History
from cronplus.store.open import (
    POSTGRES_MISSING,
    open_outbox,
    open_reader,
    open_writer,
    shown,
    sqlite_path,
)
from cronplus.store.readhistory import NoHistoryError
from tests import incli
from tests.test_daemon import cli, start

T0 = 1_750_000_000.0
SECRET = "s3cr3t-pa55"
PG_URL = f"postgresql://cron:{SECRET}@db.example.com:5432/cronplus?sslpassword={SECRET}"
COMMANDS = (["log"], ["output", "1"], ["jobs"], ["alerts"], ["trigger", "hello"], ["why", "hello"])


def one_run(h: History, log_dir: Path, *, job: str = "job", text: bytes = b"out\n") -> int:
    run_id = h.start_run(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=T0, tz=None,
                         started_at=T0, log_path=None, owner="sup")
    log = log_dir / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(text)
    h.set_log_path(run_id, str(log))
    h.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 1, exit_code=0, reason=None, final=True)
    return run_id


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return incli.base_env(HOME=str(tmp_path), CRONPLUS_STATE_DIR=str(tmp_path / "state"),
                          CRONPLUS_CRONTAB=str(tmp_path / "crontab"), **extra)


def test_log_output_and_jobs_read_the_history_that_db_names_not_the_state_dirs(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "runs.db"
    (tmp_path / "crontab").write_text("# cronplus: name=job\n0 3 * * * true\n")
    with History(db) as h:
        run_id = one_run(h, tmp_path / "logs", text=b"from the other db\n")
    env = env_for(tmp_path)

    plain = incli.run(["log", "--json"], env=env)
    assert plain.returncode == 0 and plain.stdout == "" and "no history yet" in plain.stderr

    logged = incli.run(["log", "--db", str(db), "--json"], env=env)
    assert logged.returncode == 0, logged.stderr
    assert [json.loads(line)["run_id"] for line in logged.stdout.splitlines()] == [run_id]
    out = incli.run_bytes(["output", "--db", str(db), str(run_id)], env=env)
    assert out.returncode == 0 and out.stdout == b"from the other db\n"
    jobs = incli.run(["jobs", "--db", str(db), "--json"], env=env)
    assert jobs.returncode == 0 and json.loads(jobs.stdout)["last_run_id"] == run_id
    assert not (tmp_path / "state" / "history.db").exists()


def test_cronplus_db_in_the_environment_is_the_default_and_db_overrides_it(tmp_path: Path) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    with History(first) as h:
        one_run(h, tmp_path / "logs", job="from-env")
    with History(second) as h:
        one_run(h, tmp_path / "logs", job="from-option")
    env = env_for(tmp_path, CRONPLUS_DB=str(first))
    assert json.loads(incli.run(["log", "--json"], env=env).stdout)["job"] == "from-env"
    assert json.loads(incli.run(["log", "--db", str(second), "--json"], env=env).stdout)["job"] == "from-option"
    # a global option before the command works as --state-dir does
    assert json.loads(incli.run(["--db", str(second), "log", "--json"], env=env).stdout)["job"] == "from-option"


def test_an_sqlite_url_names_the_file_and_a_relative_one_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with History(db) as h:
        one_run(h, tmp_path / "logs")
    env = env_for(tmp_path)
    assert incli.run(["log", "--db", f"sqlite://{db}", "--json"], env=env).returncode == 0
    bad = incli.run(["log", "--db", "sqlite://runs.db"], env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "sqlite:///PATH" in bad.stderr


def test_an_unknown_kind_of_database_is_one_usage_line_without_its_password(tmp_path: Path) -> None:
    done = incli.run(["log", "--db", f"mysql://root:{SECRET}@db/cron"], env=env_for(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "unknown kind of database 'mysql'" in done.stderr
    assert SECRET not in done.stderr and "Traceback" not in done.stderr


def without_cluster_extra(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`cronplus ARGV` in a Python where the PostgreSQL driver cannot be imported, as where the
    cluster extra is not installed (whether or not cronplus.store.postgres is there)."""
    code = ("import sys; sys.modules.update(dict.fromkeys(('psycopg', 'psycopg_pool', 'psycopg2')));"
            "from cronplus.cli import main; sys.exit(main(sys.argv[1:]))")
    env = env_for(tmp_path)
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_postgresql_url_without_the_cluster_extra_is_one_line_naming_it(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=hello\n0 3 * * * true\n")
    done = without_cluster_extra(tmp_path, *argv, "--db", PG_URL)
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"cronplus {argv[0]}: {POSTGRES_MISSING}\n"
    assert SECRET not in done.stdout + done.stderr


def test_cronplus_run_with_a_postgresql_url_and_no_extra_says_so_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=hello\n0 3 * * * true\n")
    done = without_cluster_extra(tmp_path, "run", "--db", PG_URL)
    assert done.returncode == 1
    assert POSTGRES_MISSING in done.stderr and "Traceback" not in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_shown_never_prints_a_urls_password_or_query() -> None:
    assert shown(PG_URL) == "postgresql://db.example.com:5432/…"
    assert shown("/var/lib/cronplus/history.db") == "/var/lib/cronplus/history.db"
    assert shown("/tmp/a\nb.db") == "/tmp/a\\x0ab.db"
    assert sqlite_path(PG_URL) is None and sqlite_path("sqlite:///x/y.db") == Path("/x/y.db")
    paths = resolve(db=PG_URL, env={"HOME": "/home/u"})
    assert paths.db == PG_URL and SECRET not in repr(paths)


def test_the_supervisor_writes_where_db_says_and_trigger_and_alerts_read_it(supervisors, tmp_path: Path) -> None:
    db = tmp_path / "shared" / "history.db"
    sup = start(supervisors, tmp_path, "# cronplus: name=hello alert=http://127.0.0.1:9/hook\n0 0 1 1 * exit 3\n",
                "--db", str(db))
    out = cli(sup.state, sup.crontab, "trigger", "hello", "--wait")
    assert out.returncode == 1 and "failed, exit 3" in out.stdout
    assert sup.stop() == 0
    assert f"history {db}" in sup.stderr  # the start line says where history goes
    assert db.exists() and not (sup.state / "history.db").exists()
    with closing(open_reader(db)) as reader:
        assert [(r.job, r.status) for r in reader.query()] == [("hello", RunStatus.FAILED)]
    listed = cli(sup.state, sup.crontab, "alerts", "--db", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["event"], r["run"]["status"]) for r in rows] == [("failure", "failed")]
    assert "no alert deliveries yet" in cli(sup.state, sup.crontab, "alerts").stderr  # the state dir has none


def test_trigger_without_a_supervisor_records_in_the_db_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=hello\n0 3 * * * echo hi\n")
    db = tmp_path / "other.db"
    done = cli(tmp_path / "state", tmp_path / "crontab", "trigger", "hello", "--wait", "--db", str(db))
    assert done.returncode == 0, done.stderr
    with closing(open_reader(db)) as reader:
        [record] = reader.query()
    assert (record.job, record.status) == ("hello", RunStatus.SUCCESS)
    assert not (tmp_path / "state" / "history.db").exists()


def test_the_factory_opens_writer_reader_and_outbox_on_one_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with pytest.raises(NoHistoryError):
        open_reader(db)
    writer = open_writer(db, host="node-1")
    try:
        with writer.transaction() as handle:  # opaque: no connection leaves the store
            assert handle is None
            run_id = writer.start_run(job="j", attempt=1, trigger=Trigger.MANUAL, scheduled_at=None, tz=None,
                                      started_at=T0, log_path=None, owner="o")
            writer.enqueue_outbox(kind="alert", event="failure", job="j", run_id=run_id, target="http://x/",
                                  format="json", secret_ref=None, payload={}, now=T0)
    finally:
        writer.close()
    with closing(open_reader(db)) as reader:
        record = reader.get_run(run_id)
        assert record is not None and record.host == "node-1"
    with closing(open_outbox(db, readonly=True)) as box:
        assert [row.run_id for row in box.list_rows()] == [run_id]


# Every store is opened through store/open.py: no module outside cronplus/store/ names the SQLite
# classes or the functions that open them.
SQLITE_OPENERS = {"History", "ReadHistory", "open_readonly", "connect", "Outbox", "open_outbox"}
STORE_SQLITE_MODULES = {"cronplus.store.history", "cronplus.store.readhistory", "cronplus.store.schema",
                        "cronplus.store.outbox"}


def test_no_module_outside_the_store_opens_an_sqlite_store_itself() -> None:
    root = Path(__file__).resolve().parent.parent / "cronplus"
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.parent.name == "store" and path.parent.parent == root:
            continue
        tree = ast.parse(path.read_text(), str(path))
        store_aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in STORE_SQLITE_MODULES:
                found += [f"{path.name}:{node.lineno}: {a.name}" for a in node.names if a.name in SQLITE_OPENERS]
            if isinstance(node, ast.ImportFrom) and node.module == "cronplus.store":
                store_aliases |= {a.asname or a.name for a in node.names if a.name in {"history", "outbox", "schema", "readhistory"}}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in SQLITE_OPENERS
                    and isinstance(node.value, ast.Name) and node.value.id in store_aliases):
                found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert found == []


def test_why_reads_the_history_db_names(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.db"
    (tmp_path / "crontab").write_text("# cronplus: name=job\n0 3 * * * true\n")
    with History(db) as h:
        one_run(h, tmp_path / "logs")
    env = env_for(tmp_path)
    plain = incli.run(["why", "job", "--json"], env=env)
    assert plain.returncode == 0 and "no history yet" in plain.stderr
    told = incli.run(["why", "job", "--db", str(db), "--json"], env=env)
    assert told.returncode == 0 and told.stderr == "", told.stderr
