"""``qistas users deactivate/reactivate/password``, ``qistas tokens list/revoke`` and the
sign-in link printed for an account made without a password."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.models import User
from qistas.domain.security import verify_password
from tests.cli.test_cli import run
from tests.conftest import LiveServer
from tests.factories import client_for


def test_tokens_and_deactivation_from_the_command_line(server: LiveServer, db_url: str, tmp_path: Path) -> None:
    made = run(["users", "create", "w@crowd.test", "--role", "annotator", "--password", "long enough",
                "--token"], tmp_path, db_url)
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    with client_for(server.url, token) as worker:
        assert worker.get("/me").status_code == 200
        listed = run(["tokens", "list", "W@crowd.test"], tmp_path, db_url)
        assert listed.exit_code == 0 and token not in listed.output
        token_id = int(listed.output.split()[0])
        assert " admin " in listed.output and " active " in listed.output
        assert run(["tokens", "revoke", str(token_id)], tmp_path, db_url).output.strip() == f"revoked token {token_id}"
        assert " revoked " in run(["tokens", "list", "w@crowd.test"], tmp_path, db_url).output
        assert run(["tokens", "revoke", "999999"], tmp_path, db_url).exit_code == 1
    stopped = run(["users", "deactivate", "w@crowd.test"], tmp_path, db_url)
    assert stopped.output.strip() == "deactivated w@crowd.test; 0 active lease(s) released"
    assert run(["users", "reactivate", "w@crowd.test"], tmp_path, db_url).exit_code == 0
    missing = run(["users", "deactivate", "nobody@crowd.test"], tmp_path, db_url)
    assert missing.exit_code == 1 and "no user 'nobody@crowd.test'" in missing.output


def test_the_last_admin_is_not_deactivated(tmp_path: Path, db_url: str) -> None:
    assert run(["users", "create", "ops@instance.test", "--role", "admin", "--password", "long enough"],
               tmp_path, db_url).exit_code == 0
    refused = run(["users", "deactivate", "ops@instance.test"], tmp_path, db_url)
    assert refused.exit_code == 1 and "last active admin" in refused.output


def test_users_password_sets_a_new_password(tmp_path: Path, db_url: str) -> None:
    assert run(["users", "create", "p@crowd.test", "--role", "annotator", "--password", "long enough"],
               tmp_path, db_url).exit_code == 0
    short = run(["users", "password", "p@crowd.test", "--password", "short"], tmp_path, db_url)
    assert short.exit_code == 1 and "at least 8" in short.output
    done = run(["users", "password", "p@crowd.test", "--password", "a new password"], tmp_path, db_url)
    assert done.exit_code == 0, done.output
    database = Database.from_url(db_url)
    try:
        with database.reader() as session:
            stored = session.scalar(select(User.password_hash).where(User.email == "p@crowd.test"))
    finally:
        database.dispose()
    assert stored is not None and verify_password(stored, "a new password")


def test_an_account_without_a_password_gets_a_sign_in_link(server: LiveServer, db_url: str, tmp_path: Path) -> None:
    made = run(["users", "create", "nopw@crowd.test", "--role", "annotator"], tmp_path, db_url)
    assert made.exit_code == 0, made.output
    path = made.output.strip().splitlines()[-1].split(": ")[-1]
    assert path.startswith("/signin/link/")
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get(path).status_code == 200
        chosen = browser.post(path, data={"password": "chosen password", "password_again": "chosen password"})
        assert chosen.status_code == 303 and chosen.headers["location"] == "/work"
