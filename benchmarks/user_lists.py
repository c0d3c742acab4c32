"""Listing the users of a large workforce: ``GET /api/v1/users`` with N users in the database.

Inserts ``--users`` annotators in bulk (a tenth of them in one organization), starts one
``qistas serve`` process, and times, as an admin: the first answer of ``GET /users`` (its size
too), with no parameters, and reading every user, following ``next`` a page of ``--page-size``
at a time after it (a server that answers a plain list gives everyone in its first answer).
The median of ``--repeat`` reads.

    python benchmarks/user_lists.py --users 100000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from annotate_loop import api, serve


def fill(url: str, n_users: int) -> None:
    from sqlalchemy import insert

    from qistas.db.engine import Database
    from qistas.db.migrate import upgrade
    from qistas.db.models import User
    from qistas.domain import users

    upgrade(url)
    db = Database.from_url(url)
    with db.writer.begin() as session:
        org_id = users.create_org(session, name="Workforce", slug="workforce").id
    with db.engine.begin() as conn:
        for first in range(0, n_users, 10_000):
            conn.execute(insert(User), [
                {"email": f"person-{n}@crowd.test", "role": "annotator", "org_id": org_id if n % 10 == 0 else None}
                for n in range(first, min(first + 10_000, n_users))])
    db.dispose()


def read_all(client: Any, page_size: int) -> tuple[float, int, float, int, int]:
    """(seconds to the first answer, its bytes, seconds to read everyone, users read, requests)."""
    started = time.perf_counter()
    first = client.get("/users")  # as a client that names no page size
    first.raise_for_status()
    first_seconds, first_bytes = time.perf_counter() - started, len(first.content)
    body, found, requests = first.json(), 0, 1
    while True:
        if isinstance(body, list):  # a server that lists everyone at once
            found += len(body)
            break
        found += len(body["items"])
        if body["next"] is None:
            break
        body = client.get("/users", params={"limit": page_size, "after": body["next"]}).json()
        requests += 1
    return first_seconds, first_bytes, time.perf_counter() - started, found, requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with serve(None, 1) as server:
        fill(f"sqlite:///{server.home}/qistas.db", args.users)
        with api(server) as admin:
            runs = [read_all(admin, args.page_size) for _ in range(args.repeat)]
    print("| users | first answer s | first answer bytes | every user s | users read | requests |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.users:,} | {statistics.median(r[0] for r in runs):.3f} | {runs[0][1]:,} | "
          f"{statistics.median(r[2] for r in runs):.2f} | {runs[0][3]:,} | {runs[0][4]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
