"""The ``qistas`` command: thin wrappers over ``qistas.domain`` and the SDK."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from qistas.config import LOG_LEVELS, get_settings
from qistas.policies import ACCOUNT_ROLES


def _database():
    from qistas.db.engine import Database

    return Database.from_url(get_settings().sqlalchemy_url)


def _settle_secret_key(settings: Any) -> None:
    """Record the deployment's secret key in the database, or stop with one line if this
    process's key is another (docs/deploy.md, "What every server shares")."""
    from qistas.db.engine import Database
    from qistas.db.migrate import missing
    from qistas.db.unit_of_work import write
    from qistas.domain.deployment import settle_secret_key
    from qistas.errors import ConfigError

    db = Database.from_url(settings.sqlalchemy_url)
    try:
        with db.reader() as session:
            if missing(session):
                click.echo("error: the database schema is not up to date; run `qistas migrate` first", err=True)
                sys.exit(1)
        write(db, lambda session: settle_secret_key(session, current=settings.secret_key,
                                                    previous=settings.previous_keys))
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    finally:
        db.dispose()


class _Commands(click.Group):
    """Commands that talk to a server end with one line on an error, never a traceback
    (``--debug`` shows it)."""

    def invoke(self, ctx: click.Context) -> Any:
        from qistas.client import ApiError, TransportError

        try:
            return super().invoke(ctx)
        except TransportError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: no answer from the server ({exc}); is `qistas serve` running at --url "
                       "(or QISTAS_URL)?", err=True)
        except ApiError as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {exc.message}", err=True)
        ctx.exit(1)


@click.group(cls=_Commands)
@click.version_option(package_name="qistas")
@click.option("--debug", is_flag=True, help="show the traceback of an error")
def main(debug: bool) -> None:
    """Qistas: a self-hosted data engine for AI training data."""


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from qistas.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.sqlalchemy_url)
    click.echo("database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="server processes; all share the database")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default=None,
              help="lowest level logged  [default: QISTAS_LOG_LEVEL, else warning]")
def serve(host: str, port: int, workers: int, log_level: str | None) -> None:
    """Migrate, then serve the API and the web UI."""
    from qistas.serving import (
        KEEPALIVE_REQUESTS,
        SERVE_WORKERS,
        prepare_connection_shares,
        prepare_metrics,
        unavailable,
    )

    problem = unavailable(host, port)
    if problem is not None:
        click.echo(f"error: cannot serve on {host}:{port}: {problem}; choose another with --port", err=True)
        sys.exit(1)
    settings = get_settings()
    # Before anything imports prometheus-client: it reads the switch to multiprocess mode then.
    prepare_metrics(settings.home, port)
    from qistas.db.migrate import upgrade
    from qistas.serving import serve as run_server

    upgrade(settings.sqlalchemy_url)
    _settle_secret_key(settings)
    # Worker processes rebuild settings from the environment: make sure they find the same home.
    os.environ["QISTAS_HOME"] = str(settings.home)
    # One process has no other to move a connection to.
    os.environ[KEEPALIVE_REQUESTS] = str(settings.keepalive_requests if workers > 1 else 0)
    os.environ[SERVE_WORKERS] = str(workers)  # QISTAS_POSTGRES_INLINE_LOOP's `auto` weighs them
    prepare_connection_shares(settings.home, port, workers)
    background = None
    if settings.background_workers and settings.background_process:
        background = start_background_process(log_level)
        os.environ["QISTAS_BACKGROUND_WORKERS"] = "false"  # the server processes leave it to that one
    click.echo(f"Qistas is serving on http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)")
    try:
        run_server(host=host, port=port, workers=workers, log_level=log_level or settings.log_level,
                   log_format=settings.log_format, forwarded_allow_ips=settings.forwarded_allow_ips)
    finally:
        if background is not None:
            stop_background_process(background)


def start_background_process(log_level: str | None) -> Any:
    """``qistas worker`` as a child of this process, which it outlives by at most a second."""
    import subprocess

    command = [sys.executable, "-c", "from qistas.cli import main; main()", "worker", "--parent", str(os.getpid())]
    if log_level:
        command += ["--log-level", log_level]
    return subprocess.Popen(command, env={**os.environ, "QISTAS_BACKGROUND_WORKERS": "true"})


def stop_background_process(process: Any) -> None:
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=40)  # a job in hand gets the workers' own 30 s to stop
    except subprocess.TimeoutExpired:
        process.kill()


@main.command()
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default=None,
              help="lowest level logged  [default: QISTAS_LOG_LEVEL, else warning]")
@click.option("--parent", type=int, default=None, hidden=True, help="stop when this process is gone")
def worker(log_level: str | None, parent: int | None) -> None:
    """Run the background work (webhooks, export and pre-label jobs, refits, active learning,
    audit checkpoints) in this process, without serving; stops on SIGTERM or Ctrl-C. Any number
    may run: they claim their work from the database."""
    import gc
    import logging.config
    import signal
    import threading

    from qistas.db.engine import Database
    from qistas.logs import logging_config
    from qistas.workers import start_workers

    settings = get_settings().model_copy(update={"background_workers": True})
    logging.config.dictConfig(logging_config(log_format=settings.log_format, level=log_level or settings.log_level))
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    _settle_secret_key(settings)
    db = Database.from_url(settings.sqlalchemy_url)
    workers = start_workers(settings, db)
    # As a server process does once started (api.app): what is loaded by now lives as long as
    # the process, and set aside, the collector's full passes skip it. Walked, they took a fifth
    # of an export's time from SQLite (benchmarks/export.py, docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    try:
        while not stopping.wait(1.0):
            if parent is not None and os.getppid() != parent:
                break  # the server that started this process died without stopping it
    finally:
        workers.stop()
        db.dispose()


@main.command()
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
def backup(destination: Path) -> None:
    """Write a consistent copy of the SQLite database to a new file (safe while serving)."""
    from qistas.db import backup as backups
    from qistas.errors import QistasError

    try:
        size = backups.backup(get_settings().sqlalchemy_url, destination)
    except QistasError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"backed up to {destination} ({size} bytes)")


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="replace the database without asking")
def restore(source: Path, yes: bool) -> None:
    """Replace the SQLite database with a backup; stop every server using it first."""
    from qistas.db import backup as backups
    from qistas.errors import QistasError

    url = get_settings().sqlalchemy_url
    if not yes:
        click.confirm(f"Replace the database at {url} with {source}? Stop every server using it first", abort=True)
    try:
        backups.restore(source, url)
    except QistasError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"restored {source}")


@main.command("rotate-secrets")
def rotate_secrets() -> None:
    """Seal every stored secret again with the current QISTAS_SECRET_KEY (after a key rotation)."""
    from qistas.db.migrate import upgrade
    from qistas.db.unit_of_work import write
    from qistas.domain import idempotency, model_endpoints, webhooks
    from qistas.domain.sealing import Keyring
    from qistas.errors import QistasError

    settings = get_settings()
    upgrade(settings.sqlalchemy_url)
    _settle_secret_key(settings)
    keyring = Keyring.from_settings(settings)
    db = _database()
    try:
        hooks, answers, keys = write(db, lambda session: (
            webhooks.reseal_secrets(session, keyring=keyring), idempotency.reseal_responses(session, keyring=keyring),
            model_endpoints.reseal_keys(session, keyring=keyring)))
    except QistasError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        db.dispose()
    click.echo(f"sealed again with the current key: {hooks} webhook secrets, {answers} stored answers, "
               f"{keys} model API keys")


@main.command()
def demo() -> None:
    """Seed a demo (when the database is empty) and print how to log in."""
    from qistas.db.migrate import upgrade
    from qistas.domain import demo as demo_data

    settings = get_settings()
    upgrade(settings.sqlalchemy_url)
    credentials = settings.home / "demo-credentials.txt"
    db = _database()
    try:
        with db.writer.begin() as session:
            if demo_data.database_is_empty(session):
                accounts = demo_data.seed(session)
                lines = [f"{a.role:<10} {a.email:<32} password {a.password}  token {a.token}" for a in accounts]
                fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write("\n".join(lines) + "\n")
                click.echo("Seeded the demo organization 'demo'.")
            project_id = demo_data.demo_project_id(session)
    finally:
        db.dispose()
    if credentials.exists():
        click.echo(f"Demo accounts (kept in {credentials}):")
        click.echo(credentials.read_text().rstrip())
        if project_id is not None:
            click.echo(f"Demo project id: {project_id}")
    else:
        click.echo("The database already has users; no demo was seeded.")


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([role.value for role in ACCOUNT_ROLES]))
@click.option("--org", "org_slug", help="the slug of an existing organization")
@click.option("--new-org", "new_org", help="create this organization (slug) for the user")
@click.option("--password", help="for signing in to the web UI; prompted if --ask-password")
@click.option("--ask-password", is_flag=True, help="prompt for the password")
@click.option("--token", "with_token", is_flag=True, help="also issue an API token (printed last)")
@click.option("--reviewer", is_flag=True, help="may review the tasks of projects open to them (docs/review.md)")
def users_create(email: str, role: str, org_slug: str | None, new_org: str | None, password: str | None,
                 ask_password: bool, with_token: bool, reviewer: bool) -> None:
    """Create a user; with --token the token is the last line printed."""
    from qistas.db.migrate import upgrade
    from qistas.db.types import utcnow
    from qistas.domain import sign_in
    from qistas.domain import users as domain_users
    from qistas.errors import NotFound, QistasError

    if org_slug and new_org:
        raise click.UsageError("give --org (an existing organization) or --new-org (a new one), not both")
    if ask_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    upgrade(get_settings().sqlalchemy_url)
    db = _database()
    try:
        with db.writer.begin() as session:
            org_id = None
            if new_org:
                org_id = domain_users.create_org(session, name=new_org, slug=new_org).id
            elif org_slug:
                try:
                    org_id = domain_users.get_org_by_slug(session, org_slug).id
                except NotFound:
                    # A typo must not make an organization: say which exist.
                    known = ", ".join(domain_users.org_slugs(session)) or "none yet"
                    raise click.ClickException(f"no organization {org_slug!r} (organizations: {known}); "
                                               "--new-org creates one") from None
            user = domain_users.create_user(session, email=email, role=role, org_id=org_id, password=password,
                                            is_reviewer=reviewer)
            # Without a password the account could never sign in: its person gets a one-time link.
            link = None if password else sign_in.create_link(session, user=user, now=utcnow())
            token = domain_users.create_token(session, user=user, name="cli") if with_token else None
    except QistasError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        db.dispose()
    click.echo(f"created {role}{' (reviewer)' if reviewer else ''} {user.email} (id {user.id})")
    if link:
        click.echo(f"one-time sign-in link (the server's address, then this path; valid {sign_in.LINK_HOURS} "
                   f"hours, shown once): {link}")
    if token:
        click.echo(token)


def _account_work(work: Any) -> Any:
    """Run ``work(session)`` in one transaction of the local database; a domain error is one line."""
    from qistas.db.migrate import upgrade
    from qistas.errors import QistasError

    upgrade(get_settings().sqlalchemy_url)
    db = _database()
    try:
        with db.writer.begin() as session:
            return work(session)
    except QistasError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        db.dispose()


@users.command("deactivate")
@click.argument("email")
@click.option("--org", "org_slug", help="the organization, when several use this email")
def users_deactivate(email: str, org_slug: str | None) -> None:
    """Deactivate a user: tokens revoked, sessions ended, their tasks back in the queue."""
    from qistas.db.types import utcnow
    from qistas.domain import audit
    from qistas.domain import users as domain_users

    def work(session: Any) -> int:
        user = domain_users.get_user_by_email(session, email=email, org_slug=org_slug)
        released = domain_users.deactivate(session, user=user, now=utcnow(), may_stop_last_owner=True)
        audit.record(session, actor=None, action="user.deactivate", object_type="user", object_id=user.id,
                     org_id=user.org_id)
        return released

    released = _account_work(work)
    click.echo(f"deactivated {email.strip().lower()}; {released} active lease(s) released")


@users.command("reactivate")
@click.argument("email")
@click.option("--org", "org_slug", help="the organization, when several use this email")
def users_reactivate(email: str, org_slug: str | None) -> None:
    """Let a deactivated user sign in again (their old tokens stay revoked)."""
    from qistas.domain import audit
    from qistas.domain import users as domain_users

    def work(session: Any) -> None:
        user = domain_users.get_user_by_email(session, email=email, org_slug=org_slug)
        domain_users.reactivate(session, user=user)
        audit.record(session, actor=None, action="user.reactivate", object_type="user", object_id=user.id,
                     org_id=user.org_id)

    _account_work(work)
    click.echo(f"reactivated {email.strip().lower()}")


@users.command("password")
@click.argument("email")
@click.option("--org", "org_slug", help="the organization, when several use this email")
@click.option("--password", help="the new password; prompted when not given")
def users_password(email: str, org_slug: str | None, password: str | None) -> None:
    """Set a user's password and end their browser sessions."""
    from qistas.domain import audit
    from qistas.domain import users as domain_users
    from qistas.domain.security import hash_password
    from qistas.errors import Invalid

    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    assert password is not None
    try:
        domain_users.check_new_password(password)
    except Invalid as exc:
        raise click.ClickException(exc.message) from None
    password_hash = hash_password(password)

    def work(session: Any) -> None:
        user = domain_users.get_user_by_email(session, email=email, org_slug=org_slug)
        domain_users.set_password_hash(session, user=user, password_hash=password_hash)
        audit.record(session, actor=None, action="user.password_reset", object_type="user", object_id=user.id,
                     org_id=user.org_id)

    _account_work(work)
    click.echo(f"password set for {email.strip().lower()}; their sessions are ended")


@main.group()
def pools() -> None:
    """Pools of annotators and their skills (docs/workforce.md), on the local database."""


@pools.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(["team", "vendor", "in_house", "shared"]), required=True)
@click.option("--org", "org_slug", help="the organization of a team or in_house pool")
def pools_create(name: str, kind: str, org_slug: str | None) -> None:
    """Create a pool: an organization's (team, in_house) or the instance's (vendor, shared)."""
    from qistas.domain import users as domain_users
    from qistas.domain import workforce

    def work(session: Any) -> int:
        org_id = domain_users.get_org_by_slug(session, org_slug).id if org_slug else None
        pool = workforce.create_pool(session, org_id=org_id, name=name, kind=kind)
        workforce.record(session, actor=None, pool=pool, action="pool.create",
                         details={"name": pool.name, "kind": pool.kind})
        return pool.id

    click.echo(f"pool {_account_work(work)} created")


@pools.command("list")
def pools_list() -> None:
    """Every pool: id, kind, organization, members, name."""
    from qistas.domain import workforce

    def work(session: Any) -> list[str]:
        return [f"{row.pool.id:>6}  {row.pool.kind:<8} {row.org_slug or '-':<16} {row.members:>6}  {row.pool.name}"
                for row in workforce.all_pools(session)]

    lines = _account_work(work)
    click.echo("\n".join(lines) if lines else "no pools")


@pools.command("import")
@click.argument("pool_id", type=int)
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def pools_import(pool_id: int, csv_file: Path) -> None:
    """Add the annotators of a CSV (email,skills,manager) to a pool; accounts are made for unknown
    emails. A bad row is named and nothing is written."""
    from qistas.db.models import Pool
    from qistas.domain import workforce
    from qistas.errors import NotFound

    text = csv_file.read_text(encoding="utf-8-sig")

    def work(session: Any) -> dict[str, int]:
        pool = session.get(Pool, pool_id)
        if pool is None:
            raise NotFound(f"no pool {pool_id}")
        done = workforce.import_members(session, pool=pool, text=text, may_name_managers=True)
        workforce.record(session, actor=None, pool=pool, action="pool.members.import", details=done)
        return done

    done = _account_work(work)
    click.echo(f"{done['rows']} annotator(s) in pool {pool_id}, {done['created']} new account(s)")


@main.group()
def skills() -> None:
    """An annotator's skills: languages and dialects (BCP 47), domains, task types, levels 1-5."""


@skills.command("set")
@click.argument("email")
@click.argument("skill", nargs=-1)
@click.option("--org", "org_slug", help="the organization, when several use this email")
def skills_set(email: str, skill: tuple[str, ...], org_slug: str | None) -> None:
    """Replace a user's skills with SKILLs such as language:ar-EG=4 domain:medical=3 (none: no skills)."""
    from qistas.domain import users as domain_users
    from qistas.domain import workforce
    from qistas.errors import Invalid

    try:
        parsed = workforce.parse_skill_cell(";".join(skill), field="skill")
    except Invalid as exc:
        raise click.ClickException(exc.message) from None

    def work(session: Any) -> None:
        user = domain_users.get_user_by_email(session, email=email, org_slug=org_slug)
        workforce.set_skills(session, user=user, skills=parsed)
        workforce.record_skills(session, actor=None, user=user, skills=len(parsed))

    _account_work(work)
    click.echo(f"{len(parsed)} skill(s) set for {email.strip().lower()}")


@skills.command("show")
@click.argument("email")
@click.option("--org", "org_slug", help="the organization, when several use this email")
def skills_show(email: str, org_slug: str | None) -> None:
    """A user's skills, one per line: kind:tag=level."""
    from qistas.domain import users as domain_users
    from qistas.domain import workforce

    def work(session: Any) -> list[str]:
        user = domain_users.get_user_by_email(session, email=email, org_slug=org_slug)
        return [f"{key}={level}" for key, level in sorted(workforce.skills_of(session, user_id=user.id).items())]

    lines = _account_work(work)
    click.echo("\n".join(lines) if lines else "no skills")


def _moment(value: str | None, name: str) -> Any:
    """A CLI time: a date (midnight UTC) or an ISO time; one without a zone is UTC."""
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (2026-01-31) or an ISO time", param_hint=name) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@main.group()
def payouts() -> None:
    """What annotators are owed (docs/workforce.md#pay-and-time), on the local database."""


@payouts.command("export")
@click.option("--from", "since", help="the period's start, included: a date (UTC) or an ISO time")
@click.option("--to", "until", help="the period's end, excluded")
@click.option("--org", "org_slug", help="only this organization's annotators (default: everyone)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="write the CSV here, not to stdout")
def payouts_export(since: str | None, until: str | None, org_slug: str | None, output: Path | None) -> None:
    """The payout CSV: per annotator and currency, their paid answers, corrections and total."""
    from qistas.domain import audit, pay
    from qistas.domain import users as domain_users

    start, end = _moment(since, "--from"), _moment(until, "--to")

    def work(session: Any) -> tuple[str, dict[str, int]]:
        org_id = domain_users.get_org_by_slug(session, org_slug).id if org_slug else None
        audit.record(session, actor=None, action="payouts.read", object_type="org", object_id=org_id, org_id=org_id,
                     details={"format": "csv"})
        rows = pay.payouts(session, org_id=org_id, since=start, until=end)
        return pay.payout_csv(rows), pay.by_currency(rows)

    text, totals = _account_work(work)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    summary = ", ".join(f"{currency} {amount}" for currency, amount in sorted(totals.items())) or "nothing owed"
    click.echo(f"{len(text.splitlines()) - 1} line(s) written to {output}: {summary} (minor units)")


@main.group()
def tokens() -> None:
    """List and revoke API tokens."""


@tokens.command("list")
@click.argument("email")
@click.option("--org", "org_slug", help="the organization, when several use this email")
def tokens_list(email: str, org_slug: str | None) -> None:
    """A user's tokens (never their secrets): id, scope, state, created, last used, name."""
    from qistas.db.types import utcnow
    from qistas.domain import users as domain_users

    def work(session: Any) -> list[str]:
        user = domain_users.get_user_by_email(session, email=email, org_slug=org_slug)
        now, lines = utcnow(), []
        for t in domain_users.list_tokens(session, user=user):
            state = ("revoked" if t.revoked_at else
                     "expired" if t.expires_at is not None and t.expires_at <= now else "active")
            used = t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "never"
            lines.append(f"{t.id:>6}  {t.scope:<8} {state:<8} created {t.created_at.isoformat(timespec='minutes')}"
                         f"  used {used}  {t.name}")
        return lines

    lines = _account_work(work)
    click.echo("\n".join(lines) if lines else "no tokens")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id (from `qistas tokens list`); every server refuses it within a second."""
    from qistas.db.types import utcnow
    from qistas.domain import audit
    from qistas.domain import users as domain_users
    from qistas.errors import NotFound

    def work(session: Any) -> None:
        found = domain_users.get_token(session, token_id=token_id)
        if found is None:
            raise NotFound(f"no token {token_id}")
        token, owner = found
        domain_users.revoke_token(session, token=token, now=utcnow())
        audit.record(session, actor=None, action="token.revoke", object_type="user", object_id=owner.id,
                     org_id=owner.org_id)

    _account_work(work)
    click.echo(f"revoked token {token_id}")


def _client(url: str, token: str):
    from qistas.client import Client

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not a server address: give it with http:// or https://",
                                 param_hint="--url")
    return Client(url, token)


url_option = click.option("--url", envvar="QISTAS_URL", default="http://127.0.0.1:8000", show_default=True)
token_option = click.option("--token", envvar="QISTAS_TOKEN", required=True, help="API token (or QISTAS_TOKEN)")




class _Counting:
    """A file whose reads advance a progress bar (httpx reads the upload through it)."""

    def __init__(self, handle: Any, bar: Any) -> None:
        self._handle = handle
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._handle.read(size)
        self._bar.update(len(data))
        return data


def _upload(project_id: int, path: Path, fmt: str | None, url: str, token: str, what: str) -> dict[str, Any]:
    """Send a file to ``/projects/{id}/{what}`` with a progress bar; print the rows refused and exit 1."""
    from qistas.client import ApiError

    with _client(url, token) as client:
        try:
            with path.open("rb") as handle, click.progressbar(
                length=path.stat().st_size, label=f"uploading {path.name}", file=sys.stderr
            ) as bar:
                files = {"file": (path.name, _Counting(handle, bar), "application/octet-stream")}
                answer: dict[str, Any] = client.request("POST", f"/projects/{project_id}/{what}", files=files,
                                                        data={"format": fmt} if fmt else None).json()
                return answer
        except ApiError as exc:
            click.echo(f"error: {exc.message}", err=True)
            for row in (exc.details or {}).get("rows", []) if isinstance(exc.details, dict) else []:
                click.echo(f"  row {row['row']}: {row['message']}", err=True)
            sys.exit(1)


@main.command("import")
@click.argument("project_id", type=int)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl", "csv"]))
@click.option("--media", "media", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="a folder of the media files the rows name (by their paths in it); sent with the tasks as a zip")
@url_option
@token_option
def import_(project_id: int, path: Path, fmt: str | None, media: Path | None, url: str, token: str) -> None:
    """Import tasks from a JSONL, CSV or JSON file (all or nothing), with their media files."""
    if media is None:
        answer = _upload(project_id, path, fmt, url, token, "tasks")
    else:
        from qistas.client.media import media_zip

        packed = media_zip(path, media, format=fmt)
        try:
            answer = _upload(project_id, packed, "zip", url, token, "tasks")
        finally:
            packed.unlink(missing_ok=True)
    stored = f", media files {answer['media']}" if answer.get("media") else ""
    click.echo(f"created {answer['created']}, duplicates {answer['duplicates']}{stored}")


@main.command("import-annotations")
@click.argument("project_id", type=int)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl"]))
@url_option
@token_option
def import_annotations(project_id: int, path: Path, fmt: str | None, url: str, token: str) -> None:
    """Import answers made in another tool (JSONL or JSON: task, annotator, answer; all or nothing)."""
    answer = _upload(project_id, path, fmt, url, token, "annotations")
    click.echo(f"created {answer['created']}")


@main.command("export")
@click.argument("project_id", type=int)
@click.option("--format", "fmt", default="jsonl", show_default=True,
              help="jsonl, csv, parquet, hf, or a format of the project's task type (conll, coco, preference, chat)")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True,
              help="a file; a folder for --format hf")
@click.option("--completed", is_flag=True, help="only completed tasks")
@click.option("--min-confidence", type=click.FloatRange(0, 1), help="only results at least this confident")
@click.option("--batch", help="only this batch (by name)")
@click.option("--since", help="only results completed after this cursor (printed by the last export)")
@click.option("--stream", is_flag=True, help="stream directly instead of running a server-side export job")
@url_option
@token_option
def export(project_id: int, fmt: str, output: Path, completed: bool, min_confidence: float | None,
           batch: str | None, since: str | None, stream: bool, url: str, token: str) -> None:
    """Export tasks with their results, annotations and provenance.

    By default the server runs an export job (progress is shown) and the file is then
    downloaded; --stream streams it in one request instead.
    """
    from qistas.client import ApiError

    options: dict[str, Any] = {"completed": completed, "min_confidence": min_confidence, "batch": batch,
                               "since": since}
    with _client(url, token) as client:
        try:
            from qistas.client.client import Project

            handle = Project(client, {"id": project_id})  # no request needed to know its id
            if stream:
                with click.progressbar(length=0, label="downloading", file=sys.stderr,
                                       show_percent=False, show_pos=True) as bar:
                    info = handle.export(format=fmt, path=output, on_progress=bar.update, **options)
            else:
                job = handle.export_job(format=fmt, **options)
                with click.progressbar(length=1000, label=f"export {job.id}", file=sys.stderr) as bar:
                    shown = 0

                    def advance(current: Any) -> None:
                        nonlocal shown
                        step = int((current.progress or 0) * 1000) - shown
                        if step > 0:
                            bar.update(step)
                            shown += step

                    job.wait(poll=0.5, on_progress=advance)
                    bar.update(1000 - shown)
                info = job.download(output)
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
    click.echo(f"wrote {output}")
    if info.cursor:
        click.echo(f"cursor {info.cursor}  (pass --since {info.cursor} to export only what completes later)")


@main.command("generate")
@click.argument("project_id", type=int)
@click.option("--endpoint", "endpoints", type=int, multiple=True, required=True,
              help="a model endpoint's id; repeat it to compare endpoints (pairwise, ranking, chat)")
@click.option("--template", "template_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help='a JSON file: {"system"?: ..., "user": ...} with {topic} {language} {index} {seed}')
@click.option("--count", type=click.IntRange(1, 1000), required=True, help="how many items to ask for")
@click.option("--topic", "topics", multiple=True, help="a topic; repeat it, the items take them in turn")
@click.option("--language", default="", help="a language or dialect, for {language}")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
@click.option("--no-wait", is_flag=True, help="queue the batch and print its id without following it")
@url_option
@token_option
def generate(project_id: int, endpoints: tuple[int, ...], template_file: Path, count: int, topics: tuple[str, ...],
             language: str, seed: int, temperature: float, no_wait: bool, url: str, token: str) -> None:
    """Run a generation batch: candidate items from model endpoints become tasks for people.

    Follows the batch until it is done and prints its counts and first failures.
    """
    from qistas.client import ApiError

    try:
        template = json.loads(template_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--template") from None
    with _client(url, token) as client:
        try:
            from qistas.client.client import Project

            handle = Project(client, {"id": project_id})
            batch = handle.generate(endpoints=list(endpoints), template=template, count=count, topics=list(topics),
                                    language=language, seed=seed, temperature=temperature)
            click.echo(f"generation batch {batch.id} queued")
            if no_wait:
                return
            with click.progressbar(length=count, label=f"batch {batch.id}", file=sys.stderr) as bar:
                shown = 0

                def advance(current: Any) -> None:
                    nonlocal shown
                    step = current.data.get("next_index", 0) - shown
                    if step > 0:
                        bar.update(step)
                        shown += step

                batch.wait(poll=0.5, on_progress=advance)
                bar.update(count - shown)
        except (ApiError, RuntimeError) as exc:
            raise click.ClickException(getattr(exc, "message", str(exc))) from None
    click.echo(f"generated {batch.generated}, near-duplicates dropped {batch.duplicates}, failed {batch.failed}")
    for failure in batch.failures[:5]:
        click.echo(f"  item {failure['index']}: {failure['reason']}")


@main.command("prelabel")
@click.argument("project_id", type=int)
@click.option("--endpoint", type=int, required=True, help="the model endpoint's id")
@click.option("--template", "template_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help='a JSON file: {"system"?: ..., "user": ...} with {field} placeholders')
@click.option("--as", "as_", type=click.Choice(["predictions", "annotations"]), default="predictions",
              show_default=True, help="pre-labels on the tasks, or the model's own annotations")
@click.option("--all-tasks", is_flag=True, help="every task not canceled, not only pending ones (predictions only)")
@click.option("--wait", is_flag=True, help="follow the job until it is done and print its counts")
@url_option
@token_option
def prelabel(project_id: int, endpoint: int, template_file: Path, as_: str, all_tasks: bool, wait: bool, url: str,
             token: str) -> None:
    """Run a pre-label job: a model endpoint answers the project's tasks.

    Prints the job's id; with --wait, follows it and prints its counts and first failures.
    """
    from qistas.client import ApiError

    try:
        template = json.loads(template_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--template") from None
    with _client(url, token) as client:
        try:
            from qistas.client.client import Project

            job = Project(client, {"id": project_id}).prelabel(endpoint=endpoint, template=template, as_=as_,
                                                               only_pending=not all_tasks)
            click.echo(f"pre-label job {job.id} queued")
            if not wait:
                return
            total = job.tasks_total or 0
            with click.progressbar(length=max(total, 1), label=f"job {job.id}", file=sys.stderr) as bar:
                shown = 0

                def advance(current: Any) -> None:
                    nonlocal shown
                    if current.tasks_total and bar.length != current.tasks_total:
                        bar.length = current.tasks_total
                    step = current.done + current.failed + current.skipped - shown
                    if step > 0:
                        bar.update(step)
                        shown += step

                job.wait(poll=0.5, on_progress=advance)
                advance(job)
        except (ApiError, RuntimeError) as exc:
            raise click.ClickException(getattr(exc, "message", str(exc))) from None
    click.echo(f"done {job.done}, failed {job.failed}, skipped {job.skipped}; "
               f"tokens {job.data['input_tokens']} in / {job.data['output_tokens']} out, cost {job.cost:.4f}")
    for failure in job.failures[:5]:
        click.echo(f"  task {failure.task_id}: {failure.reason}")


@main.command("status")
@click.argument("project_id", type=int)
@url_option
@token_option
def status(project_id: int, url: str, token: str) -> None:
    """Show a project's progress: tasks by status, annotations, throughput, recent exports."""
    from qistas.client import ApiError

    with _client(url, token) as client:
        try:
            project = client.projects.get(project_id)
            stats = project.stats()
            jobs = client.exports.list(project_id)[:5]
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
    tasks = stats["tasks"]
    total = stats["tasks_total"] or 1
    click.echo(f"project {project.id}: {project.name}")
    review = f"in review {tasks['review']}, " if tasks.get("review") else ""
    click.echo(f"tasks      {stats['tasks_total']}  (completed {tasks['completed']}, pending {tasks['pending']}, "
               f"{review}canceled {tasks['canceled']}; {100 * tasks['completed'] / total:.1f}% done)")
    click.echo(f"annotations {stats['annotations']} by {stats['annotators']} annotators; "
               f"{stats['throughput']['annotations_last_hour']} in the last hour")
    for job in jobs:
        progress = f"{100 * job.progress:.0f}%" if job.progress is not None else "-"
        click.echo(f"export {job.id}  {job.format:<10} {job.status:<8} {progress}")


@main.group("tasks")
def tasks_group() -> None:
    """Act on one task through the API."""


@tasks_group.command("audit")
@click.argument("task_id", type=int)
@click.option("--accept/--reject", "accepted", default=None, help="accept the delivered result, or reject it")
@click.option("--reason", help="why it is rejected (required with --reject)")
@url_option
@token_option
def tasks_audit(task_id: int, accepted: bool | None, reason: str | None, url: str, token: str) -> None:
    """The customer's audit of a delivered task: accept it, or reject it with a reason (it reopens)."""
    if accepted is None:
        raise click.UsageError("give --accept or --reject")
    if not accepted and not (reason or "").strip():
        raise click.UsageError("--reject needs --reason: say what is wrong")
    if accepted and reason:
        raise click.UsageError("--reason goes with --reject")
    with _client(url, token) as client:
        task = client.reviews.audit(task_id, accepted=accepted, reason=reason)
    if accepted:
        click.echo(f"task {task_id} accepted")
        return
    then = "waits for a reviewer" if task["status"] == "review" else "waits for one more annotation"
    click.echo(f"task {task_id} rejected; reopened, it {then}")


@main.group()
def audit() -> None:
    """The audit log: checking an exported one."""


@audit.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", "public_key", default=None,
              help="the instance's key (GET /api/v1/audit/public-key: its public_key or pem), or a file holding it")
def audit_verify(file: Path, public_key: str | None) -> None:
    """Check an exported audit log offline: hashes, links, sequence and checkpoint signatures."""
    from qistas.domain.audit_chain import verify

    if public_key is not None and Path(public_key).is_file():
        public_key = Path(public_key).read_text()
    with file.open(encoding="utf-8") as lines:
        verdict = verify(lines, public_key=public_key)
    for warning in verdict.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not verdict.ok:
        where = f"line {verdict.line}: " if verdict.line else ""
        click.echo(f"TAMPERED: {where}{verdict.problem}", err=True)
        sys.exit(1)
    click.echo(f"ok: {verdict.events} events linked without a gap, {verdict.checkpoints} signed checkpoint(s) "
               "match")


if __name__ == "__main__":  # pragma: no cover
    main()
