"""Settings, read from the environment (prefix ``QISTAS_``) by :func:`get_settings`.

Nothing happens at import time: no directory is created and no file is read until
``get_settings()`` is called. The secret key is never a default: when none is given it is
generated once and kept in ``QISTAS_HOME/secret_key`` (mode 0600).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qistas.errors import ConfigError
from qistas.files import private_folder

_MIN_SECRET_LENGTH = 32
_MIN_METRICS_TOKEN_LENGTH = 16
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
InlineLoop = Literal["auto", "on", "off"]
# PostgreSQL's values of ``synchronous_commit``: what a commit waits for before it returns.
SynchronousCommit = Literal["off", "local", "remote_write", "on", "remote_apply"]
# The words a boolean setting takes, for a setting that was one and is now a choice of three.
_ON_WORDS = frozenset({"on", "true", "1", "yes"})
_OFF_WORDS = frozenset({"off", "false", "0", "no"})
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)


class Settings(BaseSettings):
    """Every setting of a Qistas server. Each field is documented in ``docs/settings.md``."""

    model_config = SettingsConfigDict(env_prefix="QISTAS_", extra="ignore")

    home: Path = Field(
        default=Path("~/.qistas"),
        description="Folder for the SQLite database, the secret key, media and export files on local storage, "
        "and this server's scratch files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; plain postgresql:// URLs use psycopg 3. "
        "Default: an SQLite file qistas.db under home.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key for pseudonyms, signed media URLs, callback signatures, audit checkpoints and the "
        "secrets sealed at rest; generated under home when unset. Every server process of a deployment must "
        "have the same one: a process whose key differs from the one the database was first used with refuses "
        "to start.",
    )
    previous_secret_keys: str = Field(
        default="",
        description="Comma-separated secret keys used before the current one: values sealed with them "
        "(webhook signing secrets, stored responses) still open; `qistas rotate-secrets` seals them again "
        "with the current key.",
    )
    idempotency_key_hours: float = Field(
        default=24.0, gt=0, le=24 * 30,
        description="How long the first answer to a request with an `Idempotency-Key` is kept and replayed "
        "to its retries; older keys are purged.",
    )
    lease_seconds: int = Field(
        default=600, ge=10, le=86_400, description="How long an assignment lease lasts."
    )
    idle_seconds: int = Field(
        default=300, ge=10, le=86_400,
        description="The most time one stretch of work counts for pay and time reports: the server measures an "
        "answer from its take to its submit, and each stretch between two signs of work (the take, a lease "
        "renewal, the submit) counts at most this. The browser renews a lease from half its length on while "
        "its annotator is at work, so keep this at least half of `QISTAS_LEASE_SECONDS`.",
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest JSON request body accepted."
    )
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest uploaded import file accepted."
    )
    import_processes: int = Field(
        default=1, ge=0, le=32,
        description="Processes of each server that parse, check and store large task imports, at a lower CPU "
        "priority, so that the annotation loop in the server keeps its pace while they run; more large imports "
        "at once wait for one, in turns by organization. 0: every import is checked in the server's own threads.",
    )
    import_process_min_bytes: int = Field(
        default=1024 * 1024, ge=0,
        description="A task import sent as the request's body (JSON, JSONL or CSV, not multipart or zip) of at "
        "least this many bytes goes to an import process (`QISTAS_IMPORT_PROCESSES`); smaller ones, which take "
        "a fraction of a second, are checked in the server's threads.",
    )
    report_processes: int = Field(
        default=1, ge=0, le=32,
        description="Processes of each server that read a large project's quality report and fraud signals, and "
        "refit its worker model on request (`QISTAS_REPORT_PROCESS_MIN_ANSWERS`), at a lower CPU priority, so that "
        "the annotation loop in the server keeps its pace meanwhile; more at once wait for one, in turns by "
        "organization. 0: all of them in "
        "the server's own threads.",
    )
    report_process_min_answers: int = Field(
        default=20_000, ge=0,
        description="A project with at least this many answers (rejected ones included) has its quality report "
        "and fraud signals read, and its refits on request run, by a report process (`QISTAS_REPORT_PROCESSES`); a "
        "smaller project's, which take a fraction of a second, in the server's threads.",
    )
    keepalive_requests: int = Field(
        default=50, ge=0, le=1_000_000,
        description="With `qistas serve --workers` above 1: a client's kept-alive connection is closed after about "
        "this many requests (each connection draws its own limit between half and one and a half times this), so "
        "its next connection goes to whichever server process accepts it first, the least busy (a process that "
        "keeps more than its share of the server's connections lets one go as well, whatever this says). 0: never. "
        "Behind a proxy that balances each request itself (nginx `least_conn` over one process per port) "
        "it changes nothing that matters.",
    )
    postgres_inline_loop: InlineLoop = Field(
        default="auto",
        description="On PostgreSQL: run the annotation loop's short transactions (take, submit, skip, renew) on "
        "each server process's event loop instead of handing each to a thread, on one connection each process "
        "keeps for them: a fifth to a third less server CPU per answer, measured with the database on the same "
        "machine. Every database round trip, and every commit's wait for the disk, then holds up the process's "
        "other requests until it returns, so it pays where the cores, not the waits, are what is short. "
        "`auto`: on when the database URL names this machine (a Unix socket, `localhost` or a loopback address) "
        "and the server runs at least as many processes as the machine has cores (`qistas serve --workers N`), "
        "off otherwise; `on` (`true`): always, for a network whose round trips take well under a tenth of a "
        "millisecond, with a `connect_timeout` in the database URL, or for one-process servers started side by "
        "side, as many as the cores; "
        "`off` (`false`): never. A transaction that waits on a row lock for more than 10 ms, or one of whose "
        "statements runs past 100 ms, is run again in a thread. SQLite's loop runs on the event loop always.",
    )
    lease_synchronous_commit: SynchronousCommit | None = Field(
        default=None,
        description="On PostgreSQL: `synchronous_commit` for the annotation loop's transactions that only hand out, "
        "extend or give back a lease (take, renew, skip), set in the transaction. Unset: the database's own. `off`: "
        "their commits return without waiting for the disk (or a standby), so a take holds up nothing on a flush "
        "and the database flushes about once per answer instead of twice; a crash of PostgreSQL itself can then "
        "lose the leases handed out in its last fraction of a second (`wal_writer_delay` three times over) and "
        "their `task.take` audit events, never an answer (submits always wait, and each flushes the takes before "
        "it). A take or skip that ends an exam waits whatever this says.",
    )
    max_page_size: int = Field(default=1000, ge=1, description="Largest `limit` of a page.")
    default_page_size: int = Field(default=100, ge=1, description="`limit` when none is given.")
    max_import_errors: int = Field(
        default=100, ge=1, description="Row errors listed in a rejected import (all are counted)."
    )
    refit_interval_seconds: float = Field(
        default=60.0, ge=0, description="How often the worker models are refitted in the background; 0 turns it off."
    )
    refit_sample_answers: int = Field(
        default=200_000, ge=1_000, le=100_000_000,
        description="A refit of a task type with structured answers (all but single-label classification) fits at "
        "most about this many answers (every kth task) and decides the other tasks with the model so fitted: "
        "its memory is one to a few kilobytes per answer fitted.",
    )
    active_learning_interval_seconds: float = Field(
        default=30.0, ge=0,
        description="How often the background worker looks for projects with active learning due for "
        "retraining; 0 turns it off.",
    )
    active_learning_every: int = Field(
        default=50, ge=1,
        description="Completed tasks since the last training pass that make a project with active learning due.",
    )
    cookie_secure: bool = Field(
        default=False,
        description="Mark session cookies Secure; turn on behind HTTPS.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses (or `*`) of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed; from any other peer they are ignored.",
    )
    # --- delivery: webhooks, callbacks, export jobs (docs/delivery.md) ---
    background_workers: bool = Field(
        default=True,
        description="Run the background work (webhooks, export jobs, pre-label jobs, refits, active learning, "
        "audit checkpoints): "
        "in a process of its own that `qistas serve` starts, or in each server process (see "
        "`QISTAS_BACKGROUND_PROCESS`). `false`: none here; run `qistas worker` elsewhere.",
    )
    background_process: bool = Field(
        default=True,
        description="`qistas serve` runs the background work in one `qistas worker` process of its own, so an "
        "export or a refit never competes with requests for the server's interpreter lock; `false`: in a "
        "thread of each server process.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks and callbacks reach loopback, private, link-local and other "
        "non-public addresses. Only for trusted, single-tenant setups.",
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated networks (CIDR) webhooks may reach although they are not "
        "public, e.g. `10.20.0.0/16,fd00:1::/64`.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120,
        description="Total deadline of one webhook or callback delivery attempt (per address tried): "
        "connect, send and answer, however slowly the receiver answers.",
    )
    webhook_retry_base_seconds: float = Field(
        default=30.0, gt=0, description="Delay before the first retry; doubles after each failure."
    )
    webhook_retry_max_delay_seconds: float = Field(
        default=3600.0, gt=0, description="Longest delay between two attempts."
    )
    webhook_retry_hours: float = Field(
        default=26.0, gt=0, description="How long a delivery is retried before it is marked failed."
    )
    # --- media: files tasks show (docs/media.md) ---
    media_root: Path | None = Field(
        default=None,
        description="Folder of the media files and finished export files on local storage; servers on several "
        "machines must share it (or use a bucket). Default: `media` under home.",
    )
    media_s3_bucket: str | None = Field(
        default=None,
        description="Keep media and finished export files in this S3-compatible bucket instead of the local "
        "folder (every server process of a deployment must name the same one).",
    )
    media_s3_endpoint_url: str | None = Field(
        default=None,
        description="The object store's endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or a MinIO URL. "
        "Default: AWS's.",
    )
    media_s3_region: str = Field(default="us-east-1", description="The bucket's region.")
    media_s3_access_key_id: str | None = Field(
        default=None, description="Access key of the object store. Default: boto3's usual lookup.",
    )
    media_s3_secret_access_key: str | None = Field(
        default=None, description="Secret key of the object store. Default: boto3's usual lookup.",
    )
    media_s3_prefix: str = Field(default="", description="Prefix of every key the server writes in the bucket.")
    media_max_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1, description="Largest media file accepted, unless a project sets a "
        "lower `media.max_bytes`.",
    )
    media_max_pixels: int = Field(
        default=89_478_485, ge=1, description="Largest image accepted, in pixels (width × height): a larger one "
        "is refused as a possible decompression bomb.",
    )
    media_zip_max_ratio: float = Field(
        default=100.0, gt=1, description="Largest ratio of a zip entry's size to its compressed size; a zip "
        "past it is refused as a possible zip bomb.",
    )
    media_url_seconds: int = Field(
        default=900, ge=10, le=86_400, description="Longest life of a signed media URL; one given to an "
        "annotator or reviewer also stops working when their lease ends.",
    )
    media_fetch_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Deadline of fetching one media URL named by a task.",
    )
    # --- model endpoints: pre-labelling with an OpenAI-compatible API (docs/models.md) ---
    model_max_attempts: int = Field(
        default=4, ge=1, le=10,
        description="Requests sent for one task before its answer is recorded as failed (a 429, a 5xx, "
        "a timeout or a connection error is tried again).",
    )
    model_retry_base_seconds: float = Field(
        default=1.0, gt=0, description="Delay before a model request is tried again; doubles after each failure.",
    )
    model_retry_max_delay_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait before a model request is tried again, a server's "
        "`Retry-After` included.",
    )
    cursor_settle_seconds: float = Field(
        default=30.0, ge=0, description="Age a completion must reach before a `since` cursor covers it, so one "
        "whose transaction commits late is never skipped.",
    )
    export_readers: int = Field(
        default=2, ge=1, le=16, description="On PostgreSQL, how many database connections read one large export at "
        "once (at least 25,000 tasks each), each a range of it on the same snapshot; the ranges after the first "
        "wait in private temporary files in the export folder. A process has at most this many minus one extra "
        "connections out at once. 1: one connection reads every export.",
    )
    export_keep_hours: float = Field(
        default=168.0, gt=0, description="How long a finished export job's file is kept before it is deleted."
    )
    webhook_log_days: float = Field(
        default=30.0, gt=0, description="How long sent and failed deliveries stay in the delivery log."
    )
    job_lease_seconds: float = Field(
        default=60.0, ge=2, le=3600,
        description="How long a claim of background work (an export job, a refit, a webhook delivery beyond its "
        "timeouts) lasts without being renewed: work held by a process that died is taken over by another "
        "this long after.",
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the background workers look for work."
    )
    token_cache_seconds: float = Field(
        default=0.5, ge=0, le=1, description="How long a server process remembers the user behind an API token; "
        "a revoked token or deactivated user is refused at most this long after the change, on every process "
        "(at most 1; 0: look up every time).",
    )
    sign_in_failures_per_account: int = Field(
        default=5, ge=1, description="Failed password checks for one email within the window before further "
        "attempts are refused (429).",
    )
    sign_in_failures_per_address: int = Field(
        default=30, ge=1, description="Failed password checks from one client address within the window before "
        "further attempts from it are refused (429).",
    )
    sign_in_window_seconds: float = Field(
        default=900.0, gt=0, le=86_400, description="The window over which failed password checks are counted.",
    )
    # --- operations: logs, metrics (docs/operations.md) ---
    log_format: Literal["text", "json"] = Field(
        default="text", description="`text`: one readable line per record; `json`: one JSON object per line."
    )
    log_level: LogLevel = Field(
        default="warning", description="Lowest level logged by `qistas serve` (`--log-level` overrides it); "
        "`info` adds one line per request.",
    )
    metrics_token: str | None = Field(
        default=None, description="When set, `GET /metrics` requires `Authorization: Bearer` with this token; "
        "unset, it is open to whoever reaches the server.",
    )
    max_task_bytes_per_org: int = Field(
        default=0, ge=0, description="Most bytes of task data (the JSON text of tasks' `data`) one organization "
        "may store; an import that would pass it is refused (413 `quota_exceeded`). 0: no quota.",
    )
    max_export_bytes_per_org: int = Field(
        default=0, ge=0, description="Most bytes of export files one organization may keep on the server; "
        "new export jobs are refused (413 `quota_exceeded`) while its files reach it. 0: no quota.",
    )
    # --- request limits, per server process (docs/settings.md, "Request limits") ---
    rate_limit_per_token: float = Field(
        default=100.0, ge=0, description="Requests per second, on average, of one API token or one browser "
        "session's user (0: no limit).",
    )
    rate_limit_per_token_burst: int = Field(
        default=500, ge=1, description="Requests one token or browser session may make at once, above its rate.",
    )
    rate_limit_per_org: float = Field(
        default=1000.0, ge=0, description="Requests per second, on average, of all tokens and browser sessions "
        "of one organization, the annotation loop (take, submit, skip, renew) excepted (0: no limit).",
    )
    rate_limit_per_org_burst: int = Field(
        default=5000, ge=1, description="Requests one organization may make at once, above its rate.",
    )
    rate_limit_per_address: float = Field(
        default=50.0, ge=0, description="Requests per second, on average, from one client address without "
        "credentials (sign-in, static files) or with an unknown token (0: no limit).",
    )
    rate_limit_per_address_burst: int = Field(
        default=200, ge=1, description="Requests one client address may make at once without credentials.",
    )
    max_requests_in_flight_per_org: int | None = Field(
        default=None, ge=0, description="Requests of one organization a server process serves at once, the "
        "annotation loop excepted; more wait their turn (unset: half the process's threads; 0: no cap).",
    )
    rate_limit_wait_seconds: float = Field(
        default=10.0, ge=0, le=300, description="How long a request over its organization's in-flight cap "
        "waits for its turn before it is refused (429).",
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for raw in value.split(","):
            if raw.strip():
                try:
                    ipaddress.ip_network(raw.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"QISTAS_WEBHOOK_ALLOWED_NETWORKS: {raw.strip()!r} is not a network") from None
        return value

    @field_validator("postgres_inline_loop", mode="before")
    @classmethod
    def _inline_loop(cls, value: object) -> object:
        # `true` and `false` (the setting's words when it was a boolean) still mean on and off.
        word = str(value).strip().lower()
        return "on" if word in _ON_WORDS else "off" if word in _OFF_WORDS else word

    @field_validator("lease_synchronous_commit", mode="before")
    @classmethod
    def _lease_commit(cls, value: object) -> object:
        # PostgreSQL's own spellings: `true`, `yes`, `1` are `on`; `false`, `no`, `0` are `off`. Empty: unset.
        if value is None:
            return None
        word = str(value).strip().lower()
        return None if not word else "on" if word in _ON_WORDS else "off" if word in _OFF_WORDS else word

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for raw in value.split(","):
            entry = raw.strip()
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"QISTAS_FORWARDED_ALLOW_IPS: {entry!r} is not an address or network") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < _MIN_SECRET_LENGTH:
            raise ValueError(f"QISTAS_SECRET_KEY must be at least {_MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _refuse_weak_metrics_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < _MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(f"QISTAS_METRICS_TOKEN must be at least {_MIN_METRICS_TOKEN_LENGTH} characters")
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _previous_keys(cls, value: str) -> str:
        for raw in value.split(","):
            if raw.strip() and len(raw.strip()) < _MIN_SECRET_LENGTH:
                raise ValueError(f"QISTAS_PREVIOUS_SECRET_KEYS: each key must be at least {_MIN_SECRET_LENGTH} "
                                 "characters")
        return value

    @property
    def previous_keys(self) -> list[str]:
        return [raw.strip() for raw in self.previous_secret_keys.split(",") if raw.strip()]

    @property
    def media_folder(self) -> Path:
        return self.media_root if self.media_root is not None else self.home / "media"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver made explicit."""
        url = self.database_url or f"sqlite:///{self.home / 'qistas.db'}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+psycopg://" + url[len(plain) :]
        return url


def _load_or_create_secret(home: Path) -> str:
    path = home / "secret_key"
    if not path.exists():
        # Written whole under a name of its own, then linked into place: link() fails when the
        # key exists, so of processes starting together one key wins, and none ever reads a
        # file another is still writing.
        fd, draft = tempfile.mkstemp(dir=home, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            os.unlink(draft)
    value = path.read_text().strip()
    if len(value) < _MIN_SECRET_LENGTH:
        raise ConfigError(f"{path} holds a secret key shorter than {_MIN_SECRET_LENGTH}")
    return value


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, create ``home`` and settle the secret key."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    private_folder(settings.home)
    if settings.secret_key is None:
        settings.secret_key = _load_or_create_secret(settings.home)
    return settings
