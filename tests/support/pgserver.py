"""A throwaway, real PostgreSQL server for tests.

``PostgresServer`` runs ``initdb`` into a fresh temporary directory and starts ``postgres`` on a
free loopback port with durability switched off (fsync, synchronous_commit, full_page_writes),
trust authentication on 127.0.0.1 only and no Unix socket.  PostgreSQL refuses to run as root,
so when the tests run as root the cluster is owned by a system user (``shokai-pg``, created on
first use, or ``nobody`` as a fallback) and the server binaries are run through ``runuser``;
when the tests run as an ordinary user everything runs as that user.

The binaries are found through ``$SHOKAI_PG_BIN``, else ``pg_config --bindir``, else the newest
``/usr/lib/postgresql/*/bin``.  ``scripts/ensure-system-deps.sh`` installs them when missing.

Cleanup is layered: ``stop()`` (idempotent), an ``atexit`` hook, and a small reaper process that
stops the server and removes its directory if this interpreter dies without running either
(SIGKILL, a CI timeout).

This module uses only the standard library, so it can also be run as a script
(``python pgserver.py`` starts a server, prints its DSN and waits for Enter).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "PostgresServer",
    "PostgresServerError",
    "find_pg_bindir",
    "quote_ident",
    "running_postgres",
]

SERVICE_USER = "shokai-pg"
FALLBACK_USER = "nobody"
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
COMMAND_TIMEOUT = 120  # hard cap on any single helper command (initdb, pg_ctl, psql)
LOG_TAIL_LINES = 40

_DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "logging_collector": "off",
}


class PostgresServerError(RuntimeError):
    """The harness could not find, start, stop or talk to PostgreSQL."""


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (database, role)."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _has_server_binaries(directory: str) -> bool:
    return all(os.access(os.path.join(directory, exe), os.X_OK) for exe in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_pg_bindir() -> str:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    explicit = os.environ.get("SHOKAI_PG_BIN")
    if explicit:
        if _has_server_binaries(explicit):
            return explicit
        raise PostgresServerError(f"SHOKAI_PG_BIN={explicit!r} has no initdb/pg_ctl/postgres")
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(out)
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True))
    for directory in candidates:
        if _has_server_binaries(directory):
            return directory
    raise PostgresServerError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; looked in "
        f"{candidates or 'nothing'}. Run scripts/ensure-system-deps.sh or set SHOKAI_PG_BIN."
    )


def _find_psql(bindir: str) -> str:
    for candidate in (os.path.join(bindir, "psql"), "/usr/bin/psql", shutil.which("psql")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise PostgresServerError("psql not found (install postgresql-client)")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """Our environment without libpq's PG* variables, which would silently change targets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def _ensure_service_user() -> str:
    """As root: the non-root account that will own the cluster."""
    with contextlib.suppress(KeyError):
        pwd.getpwnam(SERVICE_USER)
        return SERVICE_USER
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    if os.access(useradd, os.X_OK):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    SERVICE_USER,
                ],
                capture_output=True,
                timeout=30,
                check=False,
            )
        # a concurrent worker may have created it first: look again either way
        with contextlib.suppress(KeyError):
            pwd.getpwnam(SERVICE_USER)
            return SERVICE_USER
    pwd.getpwnam(FALLBACK_USER)  # KeyError here means no usable account at all
    return FALLBACK_USER


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _postmaster_pid(data_dir: Path) -> int | None:
    """The pid in postmaster.pid, if that process is alive and really serves ``data_dir``."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text(encoding="ascii").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ")
    except OSError:
        return pid if _pid_alive(pid) else None
    if str(data_dir).encode() not in cmdline and b"postgres" not in cmdline:
        return None  # pid reused by an unrelated process
    return pid if _pid_alive(pid) else None


def _kill_postmaster(data_dir: Path, timeout: float = 15.0) -> None:
    """Immediate shutdown by signal (SIGQUIT), escalating to SIGKILL; bounded by ``timeout``."""
    pid = _postmaster_pid(data_dir)
    if pid is None:
        return
    for sig, wait in ((signal.SIGQUIT, timeout * 2 / 3), (signal.SIGKILL, timeout / 3)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.05)


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temp dir on a free loopback port, owned by a non-root user."""

    host: str
    port: int
    superuser: str

    def __init__(
        self,
        *,
        base_dir: str | None = None,
        settings: Mapping[str, str] | None = None,
        superuser: str = "postgres",
    ) -> None:
        """``base_dir``: where the temp dir goes (default: the system temp dir).
        ``settings``: extra postgresql.conf lines, values already in conf syntax (``"'UTC'"``, ``"on"``).
        """
        self.base_dir = base_dir
        self.superuser = superuser
        self.host = "127.0.0.1"
        self.port = 0
        self.settings: dict[str, str] = {**_DEFAULT_SETTINGS, **(settings or {})}
        self.bindir = ""
        self.psql_path = ""
        self.os_user = ""
        self.tmp_dir: Path | None = None
        self.start_seconds: float | None = None
        self._run_as: list[str] = []
        self._started = False
        self._owner_pid = os.getpid()
        self._reaper: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ paths ----------

    @property
    def data_dir(self) -> Path:
        return self._dir() / "data"

    @property
    def log_path(self) -> Path:
        return self._dir() / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return _postmaster_pid(self.data_dir) if self.tmp_dir else None

    @property
    def running(self) -> bool:
        return self._started

    def _dir(self) -> Path:
        if self.tmp_dir is None:
            raise PostgresServerError("server not started")
        return self.tmp_dir

    # ------------------------------------------------------------------ lifecycle ------

    def start(self) -> None:
        if self._started:
            return
        t0 = time.monotonic()
        self.bindir = find_pg_bindir()
        self.psql_path = _find_psql(self.bindir)
        self._choose_os_user()
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="shokai-pg-", dir=self.base_dir))
        self._owner_pid = os.getpid()
        atexit.register(self._atexit)
        try:
            self._prepare_dir()
            self._spawn_reaper()
            self._initdb()
            self._write_config()
            self._pg_ctl_start()
        except BaseException:
            self._teardown()
            raise
        self._started = True
        self.start_seconds = time.monotonic() - t0

    def stop(self) -> None:
        """Immediate shutdown and removal of the temp dir.  Safe to call any number of times."""
        self._teardown()

    def _atexit(self) -> None:
        # A forked child (multiprocessing, os.fork) must not tear down its parent's server.
        if os.getpid() == self._owner_pid:
            self._teardown()

    def _teardown(self) -> None:
        tmp, self.tmp_dir = self.tmp_dir, None
        self._started = False
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        if tmp is None:
            return
        data = tmp / "data"
        if _postmaster_pid(data) is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run(
                    [self._bin("pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w", "-t", "20"],
                    timeout=30,
                    as_server=True,
                    check=False,
                    cwd=tmp,
                )
            _kill_postmaster(data)
        shutil.rmtree(tmp, ignore_errors=True)
        if self._reaper is not None:
            reaper, self._reaper = self._reaper, None
            with contextlib.suppress(OSError):
                if reaper.stdin:
                    reaper.stdin.close()  # EOF: the reaper finds nothing left to do and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                reaper.wait(timeout=10)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ start steps ----

    def _choose_os_user(self) -> None:
        if os.geteuid() != 0:
            self.os_user = pwd.getpwuid(os.geteuid()).pw_name
            self._run_as = []
            return
        self.os_user = _ensure_service_user()
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        if os.access(runuser, os.X_OK):
            self._run_as = [runuser, "-u", self.os_user, "--"]
            return
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        if os.access(setpriv, os.X_OK):
            self._run_as = [setpriv, "--reuid", self.os_user, "--regid", self.os_user, "--init-groups", "--"]
            return
        raise PostgresServerError("running as root but neither runuser nor setpriv (util-linux) is available")

    def _prepare_dir(self) -> None:
        tmp = self._dir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.os_user)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
        os.chmod(tmp, 0o700)
        probe = self._run(
            ["test", "-w", str(tmp), "-a", "-x", str(tmp)], timeout=30, as_server=True, check=False
        )
        if probe.returncode != 0:
            raise PostgresServerError(
                f"user {self.os_user!r} cannot use {tmp}: a parent directory is not traversable; "
                "pass a base_dir under /tmp"
            )

    def _initdb(self) -> None:
        last = ""
        for locale in ("C.UTF-8", "C"):
            result = self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.superuser,
                    "-E",
                    "UTF8",
                    f"--locale={locale}",
                    "--auth=trust",
                    "--no-sync",
                    "--no-instructions",
                ],
                timeout=COMMAND_TIMEOUT,
                as_server=True,
                check=False,
            )
            if result.returncode == 0:
                return
            last = (result.stdout + result.stderr).strip()
            shutil.rmtree(self.data_dir, ignore_errors=True)
        raise PostgresServerError(f"initdb failed:\n{last[-4000:]}")

    def _write_config(self) -> None:
        # Files keep the server user's ownership: root rewrites, it does not recreate.
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# written by tests/support/pgserver.py: trust on IPv4 loopback only\n"
            "host    all    all    127.0.0.1/32    trust\n",
            encoding="utf-8",
        )
        conf = self.data_dir / "postgresql.conf"
        lines = ["", "# --- tests/support/pgserver.py ---"]
        lines += [f"{key} = {value}" for key, value in self.settings.items() if key != "port"]
        with conf.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def _pg_ctl_start(self) -> None:
        attempts = 3
        for attempt in range(1, attempts + 1):
            self.port = int(self.settings["port"]) if "port" in self.settings else _free_port(self.host)
            result = self._run(
                [
                    self._bin("pg_ctl"),
                    "start",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-o",
                    f"-p {self.port}",
                    "-w",
                    "-t",
                    str(START_TIMEOUT),
                ],
                timeout=START_TIMEOUT + 30,
                as_server=True,
                check=False,
            )
            if result.returncode == 0 and self.pid is not None:
                return
            log = _tail(self.log_path)
            _kill_postmaster(self.data_dir)
            port_taken = any(
                marker in log
                for marker in ("could not bind", "Address already in use", "could not create any TCP/IP")
            )
            if port_taken and attempt < attempts and "port" not in self.settings:
                continue  # lost the race for the free port: try another one
            raise PostgresServerError(
                f"PostgreSQL did not start on {self.host}:{self.port} (pg_ctl exit {result.returncode})\n"
                f"{(result.stdout + result.stderr).strip()}\n"
                f"--- last {LOG_TAIL_LINES} lines of {self.log_path} ---\n{log}"
            )

    def _spawn_reaper(self) -> None:
        """A detached watcher that cleans up if this interpreter dies without stop()/atexit."""
        with contextlib.suppress(OSError):
            self._reaper = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--reap", str(self._dir())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                env=_clean_env(),
            )

    # ------------------------------------------------------------------ helpers -------

    def _bin(self, name: str) -> str:
        return os.path.join(self.bindir, name)

    def _run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        as_server: bool = False,
        check: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*self._run_as, *argv] if as_server else list(argv)
        try:
            result = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                env=_clean_env(),
                cwd=str(cwd or self.tmp_dir or "/"),
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresServerError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
        if check and result.returncode != 0:
            raise PostgresServerError(
                f"command failed (exit {result.returncode}): {' '.join(cmd)}\n{result.stderr.strip()}"
            )
        return result

    # ------------------------------------------------------------------ client API ----

    def dsn(self, database: str = "postgres", *, user: str | None = None, driver: str = "asyncpg") -> str:
        """SQLAlchemy URL (``postgresql+asyncpg://...``); ``driver=""`` gives a libpq/asyncpg URI."""
        if not self.port:
            raise PostgresServerError("server not started")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        who = quote(user or self.superuser, safe="")
        return f"{scheme}://{who}@{self.host}:{self.port}/{quote(database, safe='')}"

    def psql(self, sql: str, database: str = "postgres", *, user: str | None = None) -> str:
        """Run ``sql`` with psql (-At, ON_ERROR_STOP); returns stdout, raises on any error."""
        if not self._started:
            raise PostgresServerError("server not started")
        result = self._run(
            [
                self.psql_path,
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                user or self.superuser,
                "-d",
                database,
                "-c",
                sql,
            ],
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresServerError(
                f"psql failed (exit {result.returncode}) on {sql!r}:\n{result.stderr.strip()}"
            )
        return result.stdout

    def create_database(self, name: str, *, template: str | None = None, owner: str | None = None) -> None:
        sql = f"CREATE DATABASE {quote_ident(name)}"
        if template:
            sql += f" TEMPLATE {quote_ident(template)}"
        if owner:
            sql += f" OWNER {quote_ident(owner)}"
        self.psql(sql)

    def drop_database(self, name: str, *, missing_ok: bool = True) -> None:
        """DROP DATABASE ... WITH (FORCE): open connections are terminated."""
        if_exists = "IF EXISTS " if missing_ok else ""
        self.psql(f"DROP DATABASE {if_exists}{quote_ident(name)} WITH (FORCE)")

    def create_role(self, name: str, *, login: bool = True, superuser: bool = False) -> None:
        options = ("LOGIN" if login else "NOLOGIN") + (" SUPERUSER" if superuser else " NOSUPERUSER")
        self.psql(f"CREATE ROLE {quote_ident(name)} {options}")

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}" if self._started else "stopped"
        return f"<PostgresServer {state} user={self.os_user or '?'} dir={self.tmp_dir}>"


@contextlib.contextmanager
def running_postgres(
    *, base_dir: str | None = None, settings: Mapping[str, str] | None = None
) -> Iterator[PostgresServer]:
    """``with running_postgres() as pg: ...`` — a started server, stopped and removed afterwards."""
    server = PostgresServer(base_dir=base_dir, settings=settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _reap(tmp_dir: str) -> None:
    """Reaper process body: wait for the parent's pipe to close, then clean up whatever is left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        while sys.stdin.buffer.read(4096):
            pass
    tmp = Path(tmp_dir)
    if tmp.is_dir():
        _kill_postmaster(tmp / "data")
        shutil.rmtree(tmp, ignore_errors=True)


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--reap":
        _reap(argv[1])
        return 0
    with running_postgres() as pg:
        print(f"{pg.dsn(driver='')}  (started in {pg.start_seconds:.2f}s; Enter stops it)", flush=True)
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
