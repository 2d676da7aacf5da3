"""The PostgreSQL test harness really starts, serves and removes a server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from .pgserver import (
    PostgresServer,
    PostgresServerError,
    _ensure_service_user,
    quote_ident,
    running_postgres,
)

pytestmark = pytest.mark.pg


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # real uid
    raise AssertionError(f"no Uid line for pid {pid}")


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A scratch dir the server's (non-root) user can enter; pytest's tmp_path lives under a 0700 dir."""
    path = Path(tempfile.mkdtemp(prefix="shokai-pgtest-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def test_server_runs_as_non_root_user(pg: PostgresServer) -> None:
    pid_file = pg.data_dir / "postmaster.pid"
    pid = int(pid_file.read_text().splitlines()[0])
    assert pid == pg.pid
    uid = _uid_of(pid)
    if os.geteuid() == 0:
        assert uid != 0, "postgres must not run as root"
    else:
        assert uid == os.geteuid()
    assert pg.os_user and pg.os_user != "root"
    # the temp dir belongs to the server's user, not root
    assert pg.tmp_dir is not None and pg.tmp_dir.stat().st_uid == uid


def test_settings_and_listen_address(pg: PostgresServer) -> None:
    out = pg.psql(
        "SELECT current_setting('listen_addresses'), current_setting('fsync'), "
        "current_setting('synchronous_commit'), current_setting('full_page_writes'), "
        "current_setting('max_connections'), current_setting('server_encoding'), "
        "current_setting('unix_socket_directories'), current_user"
    )
    assert out.strip() == f"127.0.0.1|off|off|off|200|UTF8||{pg.superuser}"
    assert pg.port > 0 and pg.host == "127.0.0.1"


def test_dsn_format(pg: PostgresServer) -> None:
    assert pg.dsn() == f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/postgres"
    assert pg.dsn("app db", user="bob", driver="") == f"postgresql://bob@127.0.0.1:{pg.port}/app%20db"
    assert pg.dsn("x", driver="psycopg").startswith("postgresql+psycopg://")


def test_psql_raises_on_error(pg: PostgresServer) -> None:
    with pytest.raises(PostgresServerError, match="no_such_table"):
        pg.psql("SELECT * FROM no_such_table")


def test_quote_ident() -> None:
    assert quote_ident('we"ird') == '"we""ird"'
    with pytest.raises(ValueError):
        quote_ident("")


async def test_database_from_template_via_asyncpg(pg: PostgresServer) -> None:
    pg.create_role("shokai_app")
    pg.create_role("shokai_admin", superuser=True)
    assert pg.psql("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = 'shokai_app'").strip() == "t|f"
    assert pg.psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'shokai_admin'").strip() == "t"

    pg.create_database("tmpl_base")
    pg.psql("CREATE TABLE seed (id int PRIMARY KEY, name text NOT NULL)", "tmpl_base")
    pg.psql("INSERT INTO seed VALUES (1, 'ichi'), (2, '二')", "tmpl_base")
    pg.psql("ALTER TABLE seed OWNER TO shokai_app", "tmpl_base")
    pg.create_database("copy_1", template="tmpl_base", owner="shokai_app")
    assert pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'copy_1'").strip() == (
        "shokai_app"
    )

    conn = await asyncpg.connect(pg.dsn("copy_1", user="shokai_app", driver=""), timeout=10)
    try:
        rows = await conn.fetch("SELECT id, name FROM seed ORDER BY id")
        assert [(r["id"], r["name"]) for r in rows] == [(1, "ichi"), (2, "二")]
        assert await conn.fetchval("SELECT current_user") == "shokai_app"
        await conn.execute("INSERT INTO seed VALUES (3, 'san')")
        # DROP ... WITH (FORCE) succeeds even with this connection still open
        pg.drop_database("copy_1")
    finally:
        conn.terminate()
    assert pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'copy_1'").strip() == "0"
    # the template is untouched by writes to its copy
    assert pg.psql("SELECT count(*) FROM seed", "tmpl_base").strip() == "2"
    pg.drop_database("copy_1")  # missing_ok by default
    with pytest.raises(PostgresServerError):
        pg.drop_database("copy_1", missing_ok=False)


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stop_removes_directory_and_frees_port(base_dir: Path) -> None:
    server = PostgresServer(base_dir=str(base_dir))
    server.start()
    try:
        assert server.start_seconds is not None and server.start_seconds < 60
        tmp_dir, port, pid = server.tmp_dir, server.port, server.pid
        assert tmp_dir is not None and tmp_dir.parent == base_dir and tmp_dir.is_dir()
        assert pid is not None
        assert not _port_is_free("127.0.0.1", port)
        assert server.psql("SELECT 1").strip() == "1"
    finally:
        server.stop()
    assert not tmp_dir.exists()
    assert server.pid is None and not server.running
    # The postmaster is gone (a zombie left by this machine's init counts as gone). Whether the port is
    # free right now is not asserted: on a busy machine another process may already have taken it.
    deadline = time.monotonic() + 10
    while _process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _process_alive(pid)
    server.stop()  # idempotent
    with pytest.raises(PostgresServerError):
        server.psql("SELECT 1")


def test_failed_start_reports_log_and_cleans_up(base_dir: Path) -> None:
    server = PostgresServer(base_dir=str(base_dir), settings={"shared_buffers": "'not a size'"})
    with pytest.raises(PostgresServerError) as info:
        server.start()
    message = str(info.value)
    assert "shared_buffers" in message and "last 40 lines" in message
    assert list(base_dir.iterdir()) == []
    server.stop()


def test_reaper_cleans_up_after_hard_kill(base_dir: Path) -> None:
    """If the interpreter is SIGKILLed, the server and its directory still go away."""
    support = Path(__file__).resolve().parent
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(support)!r})
        import pgserver
        pg = pgserver.PostgresServer(base_dir={str(base_dir)!r})
        pg.start()
        print(pg.tmp_dir, pg.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == -9, proc.stderr
    tmp_dir, pid = proc.stdout.split()
    deadline = time.monotonic() + 30
    while Path(tmp_dir).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(tmp_dir).exists()
    status = Path(f"/proc/{pid}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_harness_works_for_a_non_root_caller() -> None:
    """Run the harness itself as an ordinary user: then everything runs as that user."""
    support = Path(__file__).resolve().parent
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(support)!r})
        import pgserver
        with pgserver.running_postgres() as pg:
            owner = [l for l in open(f"/proc/{{pg.pid}}/status") if l.startswith("Uid:")][0].split()[1]
            print(os.geteuid(), owner, pg.os_user, pg.psql("SELECT 40 + 2").strip(), pg.tmp_dir)
        """
    )
    user = _ensure_service_user()
    # pgserver.py is stdlib-only, so any Python 3.11+ the user can execute will do (the venv's
    # interpreter may live under root's 0700 home).
    python = None
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if not candidate:
            continue
        probe = subprocess.run(
            ["runuser", "-u", user, "--", candidate, "-c", "import sys; assert sys.version_info >= (3, 11)"],
            capture_output=True,
            timeout=30,
            check=False,
            cwd="/",
        )
        if probe.returncode == 0:
            python = candidate
            break
    if python is None:
        pytest.skip(f"no Python 3.11+ interpreter usable by {user}")
    proc = subprocess.run(
        ["runuser", "-u", user, "--", python, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    euid, owner, os_user, answer, tmp_dir = proc.stdout.split()
    assert euid == owner != "0"
    assert os_user == user and answer == "42"
    assert not Path(tmp_dir).exists()
