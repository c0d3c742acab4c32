"""The annotation loop's cost in CPU instructions: a figure other work on the machine cannot move.

On a shared machine the CPU time of ``annotate_loop.py`` moves by a third between runs of the
same code, more than most changes it is meant to judge. This script runs the loop in one
process instead, through the real app (httpx's ASGI transport, no sockets): K annotators take
and answer in turn until the project is done, and it counts the instructions of that part
under valgrind's callgrind (``valgrind`` must be installed), the client's included, with a
fixed hash seed. The same code gives the same count within about 1%; compare two versions
by running each with its source on ``PYTHONPATH``:

    PYTHONPATH=src python benchmarks/loop_instructions.py
    PYTHONPATH=src python benchmarks/loop_instructions.py --token-lookups every

``--postgres URL`` runs it on a new database of that PostgreSQL cluster instead of SQLite (the
database's own processes are not counted: what is counted is the server's Python and the
driver), with the loop's transactions on the event loop (``QISTAS_POSTGRES_INLINE_LOOP``) unless
``--threads``:

    python -m tests.throwaway_postgres sh -c 'PYTHONPATH=src python benchmarks/loop_instructions.py \
        --postgres "$QISTAS_TEST_POSTGRES_URL"'

``--token-lookups remembered`` (the default) keeps every token's user for the whole run, as
the token cache does between its refreshes; ``every`` looks each request's token up. Printed:
millions of instructions per annotation (take + submit). Under valgrind everything runs some
fifty times slower: the default 60 tasks (180 annotations) take about a minute. Without
valgrind (``--no-valgrind``) it prints the process's CPU milliseconds per annotation instead,
user and system, and its voluntary context switches (on PostgreSQL, about one per round trip).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

REDUNDANCY = 3
SPEC = {"type": "classification", "labels": ["positive", "negative", "mixed"], "text_field": "text"}


def new_postgres_database(server_url: str) -> str:
    """A new, empty database on the cluster at ``server_url``: its URL (SQLAlchemy's form)."""
    from sqlalchemy import create_engine, make_url, text

    name = f"qistas_instr_{os.getpid()}_{int(time.time())}"
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def build(home: str, annotators: int, remembered: bool, postgres: str | None = None,
          inline: bool = True) -> tuple[Any, str, list[str]]:
    from qistas.api.app import create_app
    from qistas.config import Settings
    from qistas.db.engine import Database
    from qistas.db.migrate import upgrade
    from qistas.domain import users
    from qistas.domain.users import TokenCache

    url = new_postgres_database(postgres) if postgres else f"sqlite:///{home}/qistas.db"
    upgrade(url)
    db = Database.from_url(url)
    with db.writer.begin() as session:
        org = users.create_org(session, name="Bench", slug="bench")
        owner = users.create_token(session, user=users.create_user(session, email="owner@bench.test", role="owner",
                                                                   org_id=org.id))
        tokens = [users.create_token(session, user=users.create_user(session, email=f"w{n}@bench.test",
                                                                     role="annotator")) for n in range(annotators)]
    app = create_app(Settings(home=home, database_url=url, secret_key="s" * 40, background_workers=False,
                              postgres_inline_loop="on" if inline else "off"), db)
    app.state.tokens = TokenCache(seconds=3600.0 if remembered else 0.0)
    return app, owner, tokens


def counting(on: bool) -> None:
    """Switch callgrind's counting for this process (it starts off)."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True,
                   capture_output=True)


async def bench_project(client: Any, owner: str, tasks: int) -> int:
    """A classification project of ``tasks`` tasks, made through the API by its owner; its id."""
    auth = {"Authorization": f"Bearer {owner}"}
    made = await client.post("/projects", headers=auth, json={
        "name": "bench", "task": SPEC, "redundancy": {"min": REDUNDANCY, "max": REDUNDANCY}})
    project: int = made.json()["id"]
    created = await client.post(f"/projects/{project}/tasks", headers=auth,
                                json=[{"data": {"text": f"item {n}"}} for n in range(tasks)])
    assert created.status_code == 201, created.text
    return project


async def loop(app: Any, owner: str, tokens: list[str], tasks: int, valgrind: bool) -> tuple[int, float]:
    import httpx

    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://qistas/api/v1") as client:
        project = await bench_project(client, owner, tasks)
        if valgrind:
            counting(True)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start, done, working = time.process_time(), 0, list(tokens)
        while working:
            for token in list(working):  # in turn, as concurrent annotators' requests interleave
                headers = {"Authorization": f"Bearer {token}"}
                taken = await client.post(f"/projects/{project}/assignments", headers=headers)
                if taken.status_code != 201:
                    working.remove(token)
                    continue
                answered = await client.post(f"/assignments/{taken.json()['id']}/submit", headers=headers,
                                             json={"answer": {"label": "positive"}})
                assert answered.status_code == 201, answered.text
                done += 1
        cpu = time.process_time() - start
        if valgrind:
            counting(False)
        after = resource.getrusage(resource.RUSAGE_SELF)
        print(f"user {after.ru_utime - usage.ru_utime:.6f} system {after.ru_stime - usage.ru_stime:.6f} "
              f"switches {after.ru_nvcsw - usage.ru_nvcsw}")
        return done, cpu


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="qistas-instr-") as home:
        app, owner, tokens = build(home, args.annotators, args.token_lookups == "remembered", args.postgres,
                                   inline=not args.threads)
        done, cpu = asyncio.run(loop(app, owner, tokens, args.tasks, valgrind=not args.no_valgrind))
    print(f"annotations {done} cpu {cpu:.6f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=60, help=f"each answered by {REDUNDANCY} annotators")
    parser.add_argument("--token-lookups", choices=["remembered", "every"], default="remembered")
    parser.add_argument("--no-valgrind", action="store_true", help="print CPU time instead of instructions")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL cluster to run on (a new database in it)")
    parser.add_argument("--threads", action="store_true",
                        help="PostgreSQL: the loop's transactions in the thread pool (QISTAS_POSTGRES_INLINE_LOOP off)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    if not args.no_valgrind and shutil.which("valgrind") is None:
        print("valgrind is not installed: CPU time instead (--no-valgrind)", file=sys.stderr)
        args.no_valgrind = True
    command = [sys.executable, __file__, "--child", "--annotators", str(args.annotators), "--tasks", str(args.tasks),
               "--token-lookups", args.token_lookups, *(["--no-valgrind"] if args.no_valgrind else []),
               *(["--postgres", args.postgres] if args.postgres else []), *(["--threads"] if args.threads else [])]
    if not args.no_valgrind:
        with tempfile.TemporaryDirectory(prefix="qistas-callgrind-") as folder:
            command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                       f"--callgrind-out-file={folder}/callgrind.out", *command]
            ran = subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    else:
        ran = subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    result = re.search(r"annotations (\d+) cpu ([\d.]+)", ran.stdout)
    if ran.returncode != 0 or result is None:
        print(ran.stdout + ran.stderr, file=sys.stderr)
        return 1
    done, cpu = int(result[1]), float(result[2])
    where = "sqlite" if not args.postgres else f"postgresql, {'threads' if args.threads else 'inline'}"
    print(f"annotation loop ({where}), {args.annotators} annotators, {done} annotations, "
          f"token lookups {args.token_lookups}:")
    if args.no_valgrind:
        print(f"  {1000 * cpu / done:.2f} ms of CPU per annotation (client included)")
        usage = re.search(r"user ([\d.]+) system ([\d.]+) switches (\d+)", ran.stdout)
        assert usage is not None, ran.stdout
        print(f"  {1000 * float(usage[1]) / done:.2f} user + {1000 * float(usage[2]) / done:.2f} system; "
              f"{int(usage[3]) / done:.1f} voluntary context switches per annotation (a wait on the database "
              "is one)")
        return 0
    collected = re.search(r"Collected : (\d+)", ran.stderr)
    assert collected is not None, ran.stderr
    print(f"  {int(collected[1]) / done / 1e6:.3f} million instructions per annotation (client included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
