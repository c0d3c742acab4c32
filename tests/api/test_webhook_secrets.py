"""Webhook signing secrets are stored sealed; deliveries still verify; keys rotate.

A real server creates the webhook; the dispatcher signs deliveries to a receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select, text

from qistas.cli import main
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.migrate import alembic_config, upgrade
from qistas.db.models import Delivery, Webhook
from qistas.domain import signing
from qistas.domain.sealing import WEBHOOK_SECRET, Keyring
from qistas.errors import ConfigError
from qistas.workers.dispatcher import Dispatcher
from tests.api.helpers import error_of
from tests.conftest import SECRET, LiveServer, database_at, fresh_database
from tests.factories import Tenant
from tests.receiver import Receiver, receiver

NEW_SECRET = "rotated-secret-" + "y" * 40
KEY = {"Idempotency-Key": "rotate-me"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": True, "background_workers": False})


def _hook_with_one_delivery(tenant: Tenant, rx: Receiver) -> tuple[int, str]:
    pid = tenant.project()["id"]
    made = tenant.owner.post(f"/projects/{pid}/webhooks", json={"url": rx.url + "/hook", "events": ["task.completed"]})
    assert made.status_code == 201, made.text
    tenant.add_tasks(pid, [{"data": {"text": "x"}}])
    taken = tenant.annotators[0].post(f"/projects/{pid}/assignments").json()
    assert tenant.annotators[0].post(f"/assignments/{taken['id']}/submit",
                                     json={"answer": {"label": "positive"}}).status_code == 201
    return made.json()["id"], made.json()["secret"]


def _deliver(settings: Settings, database: Database) -> None:
    dispatcher = Dispatcher(settings, database)
    try:
        dispatcher.step()
    finally:
        dispatcher.close()


def _stored(database: Database, hook_id: int) -> str:
    with database.reader() as session:
        hook = session.get(Webhook, hook_id)
        assert hook is not None
        return hook.secret_sealed


def test_the_stored_secret_is_sealed_and_deliveries_verify(tenant: Tenant, database: Database,
                                                           settings: Settings) -> None:
    with receiver() as rx:
        hook_id, secret = _hook_with_one_delivery(tenant, rx)
        stored = _stored(database, hook_id)
        assert secret not in stored and secret.removeprefix("whsec_") not in stored
        with database.reader() as session:  # nowhere in the row, whatever the column
            row = session.execute(text("SELECT * FROM webhooks WHERE id = :id"), {"id": hook_id}).one()
        assert not any(secret.removeprefix("whsec_") in str(value) for value in row)
        assert stored.startswith("v1.") and Keyring(SECRET).open(stored, purpose=WEBHOOK_SECRET) == secret.encode()
        _deliver(settings, database)
        (got,) = rx.at("/hook")
        assert signing.verify(secret, got.body, got.headers["qistas-signature"], now=int(time.time()))
        assert json.loads(got.body)["event"] == "task.completed"


def _retry(settings: Settings, database: Database, admin: httpx.Client, org: dict[str, str]) -> httpx.Response:
    """The org creation sent again, to a server that has only the new key."""
    with LiveServer(settings.model_copy(update={"secret_key": NEW_SECRET}), database) as server, \
            httpx.Client(base_url=server.url + "/api/v1", headers=dict(admin.headers)) as client:
        return client.post("/orgs", json=org, headers=KEY)


def test_rotation_keeps_every_secret(tenant: Tenant, admin: httpx.Client, database: Database, settings: Settings,
                                     db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with receiver() as rx:
        hook_id, secret = _hook_with_one_delivery(tenant, rx)
        sealed_before = _stored(database, hook_id)
        # The new key alone cannot open what the old one sealed.
        with pytest.raises(ConfigError):
            Keyring(NEW_SECRET).open(sealed_before, purpose=WEBHOOK_SECRET)
        # New key, the old one listed as previous: deliveries still sign with the right secret.
        rotated = settings.model_copy(update={"secret_key": NEW_SECRET, "previous_secret_keys": SECRET})
        _deliver(rotated, database)
        (got,) = rx.at("/hook")
        assert signing.verify(secret, got.body, got.headers["qistas-signature"], now=int(time.time()))

        # A stored Idempotency-Key answer is sealed too: a server with the new key alone cannot replay it.
        org = {"name": "Rotated", "slug": "rotated"}
        made = admin.post("/orgs", json=org, headers=KEY)
        assert made.status_code == 201, made.text
        assert error_of(_retry(settings, database, admin, org), 500)["code"] == "internal_error"

        monkeypatch.setenv("QISTAS_HOME", str(tmp_path))
        monkeypatch.setenv("QISTAS_DATABASE_URL", db_url)
        monkeypatch.setenv("QISTAS_SECRET_KEY", NEW_SECRET)
        monkeypatch.setenv("QISTAS_PREVIOUS_SECRET_KEYS", SECRET)
        done = CliRunner().invoke(main, ["rotate-secrets"])
        assert done.exit_code == 0, done.output
        assert "1 webhook secrets, 1 stored answers" in done.output
        replayed = _retry(settings, database, admin, org)
        assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json() == made.json()
        sealed_after = _stored(database, hook_id)
        assert sealed_after != sealed_before and Keyring(NEW_SECRET).is_current(sealed_after)
        assert Keyring(NEW_SECRET).open(sealed_after, purpose=WEBHOOK_SECRET) == secret.encode()
        again = CliRunner().invoke(main, ["rotate-secrets"])
        assert "0 webhook secrets" in again.output  # nothing left to do

        # The old key can go now.
        with database.writer.begin() as session:
            delivery = session.scalars(select(Delivery)).one()
            delivery.status, delivery.next_attempt_at = "pending", delivery.created_at
        _deliver(settings.model_copy(update={"secret_key": NEW_SECRET}), database)
        assert len(rx.at("/hook")) == 2
        assert signing.verify(secret, rx.at("/hook")[1].body, rx.at("/hook")[1].headers["qistas-signature"],
                              now=int(time.time()))


def test_an_altered_or_unknown_seal_is_refused() -> None:
    keyring = Keyring(NEW_SECRET, [SECRET])
    sealed = keyring.seal(b"whsec_x", purpose=WEBHOOK_SECRET)
    assert keyring.open(sealed, purpose=WEBHOOK_SECRET) == b"whsec_x"
    with pytest.raises(ConfigError):
        keyring.open(sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"), purpose=WEBHOOK_SECRET)
    with pytest.raises(ConfigError):
        keyring.open(sealed, purpose="another-purpose")
    with pytest.raises(ConfigError):
        Keyring(SECRET).open(sealed, purpose=WEBHOOK_SECRET)
    with pytest.raises(ConfigError):
        keyring.open("whsec_in_clear", purpose=WEBHOOK_SECRET)


def test_the_migration_seals_existing_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QISTAS_HOME", str(tmp_path))
    monkeypatch.setenv("QISTAS_SECRET_KEY", SECRET)
    with fresh_database(tmp_path, None) as url:
        database = database_at(url, "0008_audit_chain")
        try:
            with database.writer.begin() as session:
                run = session.execute
                run(text("INSERT INTO organizations (id, name, slug, created_at) VALUES (1, 'A', 'a', '2026-01-01')"))
                run(text("INSERT INTO projects (id, org_id, name, task_spec, instructions, redundancy_min, "
                         "redundancy_max, gold_policy, priority, workforce, created_at) VALUES (1, 1, 'p', '{}', '', "
                         "1, 1, '{}', 0, 'shared', '2026-01-01')"))
                run(text("INSERT INTO webhooks (id, project_id, url, events, secret, is_active, created_at) "
                         "VALUES (1, 1, 'https://example.com/h', '[\"task.completed\"]', 'whsec_old', true, "
                         "'2026-01-01')"))
            database.dispose()
            upgrade(url)
            database = Database.from_url(url)
            stored = _stored(database, 1)
            assert "whsec_old" not in stored
            assert Keyring(SECRET).open(stored, purpose=WEBHOOK_SECRET) == b"whsec_old"
            database.dispose()
            command.downgrade(alembic_config(url), "0008_audit_chain")
            database = Database.from_url(url)
            with database.reader() as session:
                assert session.scalar(text("SELECT secret FROM webhooks WHERE id = 1")) == "whsec_old"
        finally:
            database.dispose()
