"""A throw-away PostgreSQL cluster for one test: initdb into a new directory, the server on a free 127.0.0.1 port
with its unix socket in that directory, fast shutdown and removal at the end.

The binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``; .ci/run installs
it). PostgreSQL refuses to run as root, so under root (CI) initdb and the server run as the ``postgres`` user the
package creates, through ``setpriv``; the directory is made theirs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
USER = "otel"  # the superuser initdb creates (trust authentication: a throw-away cluster)


@dataclass(frozen=True)
class Cluster:
    host: str
    port: int
    user: str
    database: str

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def bin_dir() -> Path | None:
    """Where initdb and postgres are: on PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def _as_server_user() -> list[str]:
    """The command prefix that runs PostgreSQL's binaries as a user it accepts."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_server_user() + argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _wait_ready(binaries: Path, server: subprocess.Popen, port: int, log: Path, cwd: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited ({server.returncode}):\n{log.read_text(errors='replace')}")
        ready = subprocess.run([str(binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=cwd, timeout=30)
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"postgres not ready within {START_TIMEOUT_S:g} s:\n{log.read_text(errors='replace')}")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)  # fast shutdown: connected clients are disconnected
        try:
            server.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


@contextmanager
def cluster(binaries: Path, database: str) -> Iterator[Cluster]:
    """A new cluster holding ``database``, stopped and removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="otel-distro-pg-"))
    server: subprocess.Popen | None = None
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
        data, log, port = root / "data", root / "server.log", free_port()
        _run([str(binaries / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8",
              "--locale=C"], cwd=root)
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [*_as_server_user(), str(binaries / "postgres"), "-D", str(data), "-p", str(port),
                 "-k", str(root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_ready(binaries, server, port, log, root)
        _run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, database], cwd=root)
        yield Cluster("127.0.0.1", port, USER, database)
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(root, ignore_errors=True)
