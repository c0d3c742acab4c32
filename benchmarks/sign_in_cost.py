"""What one password guess costs the server: the sign-in page, then a wrong password posted.

One anonymous client at a time against a real ``qistas serve`` (SQLite): N guesses for an
unknown email, each a fresh connection that reads the page (for its CSRF token) and posts. After
``QISTAS_SIGN_IN_FAILURES_PER_ACCOUNT`` (5) failures the posts are refused with 429 before any
password is hashed; the figures are the server process's CPU per guess, the page alone and page
+ post, over the refused ones.

    python benchmarks/sign_in_cost.py
    python benchmarks/sign_in_cost.py --guesses 500
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import httpx
from annotate_loop import cpu_seconds, fresh_database, serve


def guess(url: str, post: bool) -> int:
    with httpx.Client(base_url=url, timeout=60) as anonymous:
        page = anonymous.get("/login")
        if not post:
            return page.status_code
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        return anonymous.post("/login", data={"csrf": token.group(1) if token else "", "email": "owner@nowhere.test",
                                               "password": "wrong"}).status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guesses", type=int, default=200)
    args = parser.parse_args()
    with fresh_database("sqlite", None) as db_url, serve(db_url, 1) as server:
        for _ in range(10):  # the first of each: the page's template compiled, the throttle reached
            guess(server.url, True)
        print("| request | guesses | server CPU ms per guess | answers |")
        print("|---|---:|---:|---|")
        for name, post in (("the sign-in page", False), ("the page, then a wrong password posted", True)):
            start, statuses = cpu_seconds([server.proc.pid]), Counter[int]()
            for _ in range(args.guesses):
                statuses[guess(server.url, post)] += 1
            spent = cpu_seconds([server.proc.pid]) - start
            print(f"| {name} | {args.guesses} | {1000 * spent / args.guesses:.1f} | {dict(statuses)} |")


if __name__ == "__main__":
    main()
