"""Tables. Mapped classes only: behaviour lives in ``qistas.domain``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from qistas.db.enums import AuditStatus, BatchStatus, LeaseStatus, ReviewStatus, TaskStatus, TokenScope
from qistas.db.types import JSONType, UTCDateTime, utcnow

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


def table(entity: type[Base]) -> Table:
    """The mapped class's table, for statements that need values, not objects."""
    return cast(Table, entity.__table__)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    # An email is unique within an organization, and among the accounts of no organization
    # (admins, the shared workforce); never across organizations, so that creating a user
    # tells no one about another tenant's people (docs/security.md).
    __table_args__ = (
        Index("uq_users_org_email", "org_id", "email", unique=True),
        Index("uq_users_email_no_org", "email", unique=True, sqlite_where=text("org_id IS NULL"),
              postgresql_where=text("org_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))  # a Role: admin | owner | member | annotator | external
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_reviewer: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # An annotator of another tool, known by its id there (role "external"; never signs in).
    external_id: Mapped[str | None] = mapped_column(String(255))
    # A model annotator (role "model"): the endpoint whose answers it gives.
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("model_endpoints.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What routing reads (domain.workforce): {"pools": [ids], "skills": {"language:ar-EG": 4}}. Derived
    # from pool_members and user_skills, written with them, so the token cache carries it to every request.
    work_profile: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token: tokens are 256 random bits, so a fast hash is enough here
    # (argon2 is for low-entropy passwords) and lookups stay one indexed read.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scope: Mapped[str] = mapped_column(String(16), default=TokenScope.ADMIN)  # a TokenScope
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written at most once a minute per token (domain.users.TokenCache), never per request.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInLink(Base):
    """A one-time sign-in link for an account made without a password; only its hash is kept."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInFailure(Base):
    """A failed password check, counted by ``key`` (an account or a client address) to throttle guessing."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key", "key", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    task_spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    instructions: Mapped[str] = mapped_column(Text, default="")
    redundancy_min: Mapped[int] = mapped_column(Integer, default=1)
    redundancy_max: Mapped[int] = mapped_column(Integer, default=1)
    redundancy_target: Mapped[float | None] = mapped_column(Float)
    gold_policy: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Which settled tasks a reviewer checks before delivery (domain.review_policy).
    review_policy: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    # Whether annotators see a model's prediction as a pre-fill (domain.predictions).
    prefill: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    # How models' answers count (domain.model_annotators): {"min_human_answers"?: int}.
    model_annotators: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    # Media limits (domain.media): {"max_bytes"?: int, "types"?: [str], "fetch_urls"?: bool}.
    media: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    # Active learning (domain.active_learning): the setting, the model version last trained
    # and the number of completed tasks it was trained on.
    active_learning: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    active_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active_trained_on: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # What an answer earns (domain.pay.parse_pay): {"currency", "per_task" | "per_hour", "floor_per_hour"?}
    # in the currency's minor units; {} pays nothing.
    pay: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    # "shared": the shared workforce and the organization's own annotators; "org": only the latter.
    workforce: Mapped[str] = mapped_column(String(16), default="shared")
    # Which pools may work on it and which skills they need (domain.workforce.parse_routing).
    routing: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    # The name annotators see: a neutral code name, never the customer's own name for it.
    work_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # Set when the project is a qualification exam (domain.exams): {"pass_mark", "questions",
    # "cooldown_seconds", "max_attempts", "grants"}; its gold tasks are the questions. Empty: not one.
    exam: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Archived: read-only for its organization, hidden from annotators (leases already out may
    # still be submitted: no answer is lost).
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # a BatchStatus: staging | in_progress | paused | completed | canceled
    status: Mapped[str] = mapped_column(String(16), default=BatchStatus.STAGING)
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# A partial index's condition; queries that want the index spell it with the same literals
# (a bound parameter would not prove they match).
TASK_IN_FLIGHT = text("status = 'pending' AND n_claimed > 0 AND n_claimed < required")
TASK_UNSTARTED = text("status = 'pending' AND n_claimed = 0")
TASK_COMPLETED = text("completed_at IS NOT NULL")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "unique_id"),
        # Serves "next task" queries: open tasks of a project, unstarted ones in import order.
        Index("ix_tasks_claim", "project_id", "status", "n_claimed", "id"),
        # The tasks in flight (started, still open) with a free slot, in import order: the claim
        # looks there first, and must not walk past every completed task, nor every full one
        # (all its slots leased), to find them.
        Index("ix_tasks_in_flight", "project_id", "id", postgresql_where=TASK_IN_FLIGHT, sqlite_where=TASK_IN_FLIGHT),
        # Serves exports of "changes since a cursor": completion order. Partial, as the next: a
        # claim's UPDATE writes an entry in every index whose condition its new row meets.
        Index("ix_tasks_completed", "project_id", "completed_at", "id", postgresql_where=TASK_COMPLETED,
              sqlite_where=TASK_COMPLETED),
        # Unstarted tasks in active-learning order (serve_rank, then import order): the claim of a
        # project with active learning on reads it instead of ix_tasks_claim.
        Index("ix_tasks_ranked", "project_id", "serve_rank", "id", postgresql_where=TASK_UNSTARTED,
              sqlite_where=TASK_UNSTARTED),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    unique_id: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    gold: Mapped[Any | None] = mapped_column(JSONType)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.PENDING)  # a TaskStatus
    # Annotations the task needs now: starts at redundancy.min, grows up to max.
    required: Mapped[int] = mapped_column(Integer)
    # Submitted annotations plus live leases: never above `required` (invariant 1).
    n_claimed: Mapped[int] = mapped_column(Integer, default=0)
    n_annotations: Mapped[int] = mapped_column(Integer, default=0)
    # Active learning's serving order (lower first); 0 until a training pass ranks the task, so
    # tasks imported since the last pass come first, in import order.
    serve_rank: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    response: Mapped[Any | None] = mapped_column(JSONType)
    confidence: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str | None] = mapped_column(String(32))
    below_target: Mapped[bool] = mapped_column(Boolean, default=False)
    # The aggregator's verdict: the answers disagree beyond what the task type tolerates.
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What the task type adds to a result: an interval, per-label confidences, scores.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    # The review stage (domain.reviews): its verdict, the customer's, and the round (one more
    # each time a rejection sends the task back: one review per stage and round).
    review_status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.NONE, server_default="none")
    audit_status: Mapped[str] = mapped_column(String(16), default=AuditStatus.NONE, server_default="none")
    review_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # While a reviewer holds the task: until when. A claim sets it with a guarded UPDATE of
    # the task row, so two reviewers never hold one task (as n_claimed does for annotators).
    review_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Models' pre-labels, normalised by the task type: [{"model", "answer", "score"}] or null
    # (domain.predictions). On the task row: an import moves rows with INSERT ... SELECT, and
    # the take reads them by primary key only when the project shows pre-fills.
    predictions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        # An annotator never gets the same task twice (invariant 2), enforced by the database.
        UniqueConstraint("task_id", "annotator_id"),
        Index("ix_assignments_live", "project_id", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=LeaseStatus.ACTIVE)  # a LeaseStatus
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The server's clock of the work (domain.pay.active_ms): the time counted up to the last
    # renewal, and when that was (null: none yet, the lease's start counts).
    # (No Python-side default: the loop's INSERT leaves it to the database.)
    active_ms: Mapped[int] = mapped_column(Integer, server_default="0")
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Annotation(Base):
    __tablename__ = "annotations"
    # An annotator's answers in a project in order: the review policy's probation reads the
    # first few, bounded, at each settle. It is also the index of a project's answers (its
    # first column): an index of ``project_id`` alone cost every answer one more entry.
    __table_args__ = (Index("ix_annotations_annotator_order", "project_id", "annotator_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # One annotation per lease (invariant 4), enforced by the database.
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), unique=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    answer: Mapped[Any] = mapped_column(JSONType)
    seconds: Mapped[float | None] = mapped_column(Float)
    # On gold tasks only: whether the answer matched the gold answer.
    gold_correct: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Rejected in review or at audit: it no longer counts towards the task's result.
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    # Excluded with every answer of its annotator (domain.fraud): rejected_at is set too, so it
    # counts for nothing anywhere; this says why it stopped counting.
    excluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The model whose prediction the annotator was shown as a pre-fill, and whether they kept it.
    prefill_model: Mapped[str | None] = mapped_column(String(200))
    prefill_kept: Mapped[bool | None] = mapped_column(Boolean)
    # Measured by the server from the lease to the submit, each idle stretch capped (domain.pay);
    # null for answers that came without a lease (imports, models).
    active_ms: Mapped[int | None] = mapped_column(Integer)
    # What the answer earned at the project's rate when it was submitted: a ledger entry that is
    # never changed (corrections are ``PayEntry`` rows). Null: an unpaid project.
    pay_minor: Mapped[int | None] = mapped_column(BigInteger)
    pay_currency: Mapped[str | None] = mapped_column(String(3))


class PayEntry(Base):
    """A correction to an annotator's earnings: a signed amount with its reason, appended,
    never changed or deleted (domain.pay)."""

    __tablename__ = "pay_entries"
    __table_args__ = (Index("ix_pay_entries_user", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Review(Base):
    """A review lease and its outcome (stage "review"), or a customer's audit (stage "audit")."""

    __tablename__ = "reviews"
    __table_args__ = (
        # A task is reviewed at most once per stage and round, enforced by the database.
        Index("uq_reviews_done", "task_id", "stage", "round", unique=True,
              sqlite_where=text("status = 'submitted'"), postgresql_where=text("status = 'submitted'")),
        Index("ix_reviews_project", "project_id", "stage", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    stage: Mapped[str] = mapped_column(String(8))  # a ReviewStage
    round: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=LeaseStatus.ACTIVE)  # a LeaseStatus
    action: Mapped[str | None] = mapped_column(String(16))  # a ReviewAction, once submitted
    answer: Mapped[Any | None] = mapped_column(JSONType)  # a correction
    reason: Mapped[str | None] = mapped_column(Text)
    annotation_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id"))  # the one rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkerStats(Base):
    """Per project and annotator: counts kept up to date at each submit."""

    __tablename__ = "worker_stats"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    n_annotations: Mapped[int] = mapped_column(Integer, default=0)
    seconds_total: Mapped[float] = mapped_column(Float, default=0.0)
    n_gold: Mapped[int] = mapped_column(Integer, default=0)
    n_gold_correct: Mapped[int] = mapped_column(Integer, default=0)
    # Set when gold accuracy falls under the project's threshold: no more of its tasks.
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    # After an unblock: gold answers counted afresh, and this many needed before the threshold
    # applies again (at least the policy's min_answers).
    probation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Answers a reviewer or the customer judged, and of those the ones they rejected.
    n_reviewed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    n_rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by a fraud action (domain.fraud): "probation" (more gold, answers reviewed), "blocked"
    # or "excluded" (blocked, and every answer excluded); null for everyone else.
    fraud_status: Mapped[str | None] = mapped_column(String(16))
    fraud_reason: Mapped[str | None] = mapped_column(Text)


class QualityModel(Base):
    """The last fit of a project's worker model, used to score each new answer online."""

    __tablename__ = "quality_models"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(32))
    fitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The project's answers given when it was fitted (``worker_stats``' counts, rejected ones
    # included): what the refit's pace compares the counts of now with.
    n_annotations: Mapped[int] = mapped_column(Integer)
    # {"workers": [annotator ids], "priors": [K], "confusions": [W][K][K]}
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)


# The condition of the index of events not linked into their chain yet.
AUDIT_PENDING = text("seq IS NULL")
AUDIT_LINKED = text("seq IS NOT NULL")


class AuditEvent(Base):
    """Append-only: who read or changed what. Each organization's events form a hash chain
    (``chain_id`` is the organization's id, 0 for events without one): ``seq`` counts from 1
    without gaps and ``hash`` covers the event and the previous event's hash
    (``qistas.domain.audit_chain``). ``actor`` is the name the hash covers (an annotator's is
    a pseudonym); ``actor_id`` is for the operator and not part of the chain. On PostgreSQL an
    event is written pending (``seq``, ``prev_hash`` and ``hash`` empty; ``txid`` the writing
    transaction's id) and linked into its chain after its transaction commits
    (``qistas.domain.audit.link``); once linked it never changes."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "seq", name="uq_audit_events_chain_seq"),
        Index("ix_audit_events_pending", "chain_id", "txid", "id", postgresql_where=AUDIT_PENDING,
              sqlite_where=AUDIT_PENDING),
        # Linked events only (a chain's reads say ``seq IS NOT NULL``): a pending event, written
        # and then linked, would write an entry for each of its two versions.
        Index("ix_audit_events_at", "at", postgresql_where=AUDIT_LINKED, sqlite_where=AUDIT_LINKED),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Not indexed: events are read by chain (``chain_id``), and each would write an entry twice.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(BigId)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    txid: Mapped[int | None] = mapped_column(BigInteger)


class AuditHead(Base):
    """The last linked event of each audit chain: linking locks this row, so a chain stays linear.
    ``pending_from``: every pending event of the chain was written by a transaction with an id at
    least this (PostgreSQL): where the linker's scan of the pending index starts, past the
    entries of events it linked before."""

    __tablename__ = "audit_heads"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    pending_from: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class AuditCheckpoint(Base):
    """A signed statement that a chain's event ``seq`` had ``hash`` (Ed25519, the server's key)."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoints_chain_seq", "chain_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


class WebSession(Base):
    """A browser session. Only a hash of the cookie's value is kept, as for API tokens."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Webhook(Base):
    """A project's subscription: events are POSTed, signed with ``secret``, to ``url``."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSONType)
    # The signing secret, sealed (domain/sealing.py): the dispatcher opens it to sign a delivery.
    secret_sealed: Mapped[str] = mapped_column(String(512))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotentRequest(Base):
    """The first request a user sent with an ``Idempotency-Key``, and its answer once it has one.

    Inserted before the work starts: the unique key lets one of two identical requests run.
    ``status_code`` stays null while it runs; the answer's body is sealed (it may hold a new
    token or a webhook's secret).
    """

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotent_requests_user_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Delivery(Base):
    """The outbox: one event for one destination, written in the transaction of the change.

    Also the delivery log the owner reads: attempts, last status, last error.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), index=True)  # the same for every copy and re-send
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhooks.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # webhook | batch_callback | task_callback
    url: Mapped[str] = mapped_column(String(2048))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TaskImport(Base):
    """An import whose checked rows are being written: staged in chunks, then moved into
    ``tasks`` in chunks, so no transaction of it holds the write lock for long.

    ``staging``: rows go into ``staged_tasks``; if the process dies now, the recovery deletes
    them (nothing was imported). ``committed``: every row is staged and the import will
    complete; the recovery finishes moving them. The row is deleted when the import is done.
    """

    __tablename__ = "task_imports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16), default="staging")  # staging | committed
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    # Written by each chunk: an import untouched for long was left by a process that died.
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StagedTask(Base):
    """A checked row of a ``TaskImport``, not yet a task (``seq``: its place in the file)."""

    __tablename__ = "staged_tasks"

    import_id: Mapped[int] = mapped_column(ForeignKey("task_imports.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    unique_id: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    gold: Mapped[Any | None] = mapped_column(JSONType)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    required: Mapped[int] = mapped_column(Integer)
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    predictions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)


class ExportJob(Base):
    """A large export written in the background, its file kept in the store of media files
    (a folder every server shares, or the bucket) under ``file_key``."""

    __tablename__ = "export_jobs"
    __table_args__ = (Index("ix_export_jobs_queue", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    format: Mapped[str] = mapped_column(String(16))
    options: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A running job whose lease ran out was left by a crashed process: it is claimed again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    file_name: Mapped[str | None] = mapped_column(String(255))
    # The file's key in the store; None for a file written under QISTAS_HOME/exports before
    # export files moved to the store (still served from there by the server that wrote it).
    file_key: Mapped[str | None] = mapped_column(String(400))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    cursor: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ModelEndpoint(Base):
    """An organization's OpenAI-compatible chat-completions API that pre-labels tasks
    (domain.model_endpoints)."""

    __tablename__ = "model_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    base_url: Mapped[str] = mapped_column(String(2048))
    model: Mapped[str] = mapped_column(String(200))
    # The API key, sealed (domain/sealing.py); null for a server that wants none.
    api_key_sealed: Mapped[str | None] = mapped_column(String(1024))
    max_concurrency: Mapped[int] = mapped_column(Integer, default=4)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    # Set by an admin only: the SSRF guard lets this endpoint reach private addresses.
    allow_private: Mapped[bool] = mapped_column(Boolean, default=False)
    price_input_per_1k: Mapped[float | None] = mapped_column(Float)
    price_output_per_1k: Mapped[float | None] = mapped_column(Float)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrelabelJob(Base):
    """A project's tasks sent to a model endpoint; each answer becomes a prediction."""

    __tablename__ = "prelabel_jobs"
    __table_args__ = (Index("ix_prelabel_jobs_queue", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("model_endpoints.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    template: Mapped[dict[str, Any]] = mapped_column(JSONType)
    only_pending: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the answers become: "predictions" on the tasks, or "annotations" by the model's annotator.
    mode: Mapped[str] = mapped_column(String(16), default="predictions", server_default="predictions")
    # A standing job answers each task as it comes: at the end of a pass it waits (status
    # "waiting", until ``lease_until``) and goes on after its cursor, until it is stopped.
    standing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | waiting | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tasks_total: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # Tasks that already carried this endpoint's prediction.
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # The last task sent (tasks go in id order): a job taken over goes on from there.
    last_task_id: Mapped[int | None] = mapped_column(BigInteger)
    # The first failures: [{"task_id", "reason"}].
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class GenerationBatch(Base):
    """Candidate items a model endpoint (or several) generates into a project, for people to
    verify, fix, compare or rank; see domain/generation.py."""

    __tablename__ = "generation_batches"
    __table_args__ = (Index("ix_generation_batches_queue", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    # The endpoints asked, in order: [id, ...]; a comparison asks each for every item.
    endpoint_ids: Mapped[list[int]] = mapped_column(JSONType)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    template: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # {"count", "topics", "language", "seed", "temperature", "dedup_threshold"}
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The next item index to generate: a batch taken over goes on from there.
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    generated: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # The first failures: [{"index", "reason"}]; the first near-duplicates: [{"index", "of"}].
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    dropped: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Media(Base):
    """A media file an organization imported: its bytes are in the media store under its hash
    (``domain.mediastore``), shared by every organization that imported the same bytes; this
    row is what makes them readable to the organization (another one's hash is not found)."""

    __tablename__ = "media"
    __table_args__ = (UniqueConstraint("org_id", "sha256"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Read from the bytes at import, never from the name or the uploader.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)  # images, as shown (EXIF orientation applied)
    height: Mapped[int | None] = mapped_column(Integer)
    duration: Mapped[float | None] = mapped_column(Float)  # audio, in seconds
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Pool(Base):
    """A group of annotators: a team or the in-house staff of an organization (``org_id``), or a
    vendor or the shared workforce of the instance (no organization)."""

    __tablename__ = "pools"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # team | vendor | in_house | shared
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PoolMember(Base):
    __tablename__ = "pool_members"

    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    is_manager: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserSkill(Base):
    """A skill of an annotator: a language (BCP 47 tag), a domain or a task type, at a level 1-5."""

    __tablename__ = "user_skills"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class ExamAttempt(Base):
    """An annotator's attempt at an exam (a project with ``exam`` set): its questions are gold
    tasks served by the assignment engine, scored as they are answered."""

    __tablename__ = "exam_attempts"
    __table_args__ = (
        # Attempts are numbered per annotator and exam; two parallel starts cannot both make
        # attempt n (the start is also serialised per annotator and exam: domain.exams).
        UniqueConstraint("project_id", "annotator_id", "number"),
        Index("ix_exam_attempts_annotator", "annotator_id", "project_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | passed | failed
    # The exam's settings when the attempt began: a change applies to later attempts.
    questions: Mapped[int] = mapped_column(Integer)
    pass_mark: Mapped[float] = mapped_column(Float)
    n_served: Mapped[int] = mapped_column(Integer, default=0)
    n_answered: Mapped[int] = mapped_column(Integer, default=0)
    n_correct: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float | None] = mapped_column(Float)  # percent of the questions answered right
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InstanceKey(Base):
    """The key id (``sealing.key_id``) of the secret key every process of the deployment uses:
    one row, written by the first process to start; a process with another key refuses to
    start, since pseudonyms, signed URLs, callback signatures and sealed values would differ."""

    __tablename__ = "instance_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    key_id: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerLease(Base):
    """A named claim on background work that has no row of its own (a project's refit): held by
    one process until ``until``, renewed while it works; a dead holder's lease runs out."""

    __tablename__ = "worker_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
