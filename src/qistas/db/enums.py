"""The fixed vocabularies stored in the database: roles and the statuses of tasks, leases, batches.

Each is a ``StrEnum`` whose values are the strings stored in the columns and spoken by the API:
a member equals its string (``Role.ADMIN == "admin"``), hashes like it and is bound to the
database as it, so columns stay plain strings and rows read back compare equal to members.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user is (``users.role``); what each may do lives in ``qistas.policies``."""

    ADMIN = "admin"  # the operator of the instance
    OWNER = "owner"  # a customer organization's manager
    MEMBER = "member"  # a customer organization's staff
    ANNOTATOR = "annotator"  # a worker: the shared workforce, or in-house in one organization
    # An annotator of another tool, imported with their answers under a pseudonymous id;
    # never signs in.
    EXTERNAL = "external"
    # A model endpoint answering a project's tasks as an annotator of its own, one per
    # (organization, endpoint); never signs in and is never served tasks.
    MODEL = "model"


class TaskStatus(StrEnum):
    """``tasks.status``."""

    PENDING = "pending"
    # Its annotations are in and aggregated; a reviewer checks it before it is delivered.
    REVIEW = "review"
    COMPLETED = "completed"
    CANCELED = "canceled"


class ReviewStatus(StrEnum):
    """``tasks.review_status``: what the review stage made of the task's answers."""

    NONE = "none"  # never held for review
    PENDING = "pending"  # waiting for a reviewer
    ACCEPTED = "accepted"
    CORRECTED = "corrected"  # the reviewer's answer is the result
    REJECTED = "rejected"  # an answer was sent back; the task went back to annotators


class AuditStatus(StrEnum):
    """``tasks.audit_status``: the customer's verdict on a delivered task."""

    NONE = "none"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ReviewStage(StrEnum):
    """``reviews.stage``: who checked."""

    REVIEW = "review"  # a reviewer of the workforce
    AUDIT = "audit"  # the customer


class ReviewAction(StrEnum):
    """``reviews.action``."""

    ACCEPT = "accept"
    CORRECT = "correct"
    REJECT = "reject"


class LeaseStatus(StrEnum):
    """``assignments.status``: a lease of a task to an annotator, and how it ended."""

    ACTIVE = "active"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    EXPIRED = "expired"
    IMPORTED = "imported"  # the stand-in lease of an answer imported from elsewhere
    MODEL = "model"  # the stand-in lease of a model annotator's answer (domain.model_annotators)
    RELEASED = "released"  # given back when its annotator was deactivated


class BatchStatus(StrEnum):
    """``batches.status``: ``staging -> in_progress -> completed``, also ``paused``, ``canceled``."""

    STAGING = "staging"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELED = "canceled"


class TokenScope(StrEnum):
    """``api_tokens.scope``: what requests an API token may make (``qistas.policies``)."""

    READ = "read"  # GET requests only
    ANNOTATE = "annotate"  # the annotation loop (take, submit, skip, renew) and GET requests
    ADMIN = "admin"  # everything its user may do
