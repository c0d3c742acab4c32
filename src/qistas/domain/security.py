"""Passwords (argon2), API tokens (random, stored as SHA-256) and pseudonyms."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import lru_cache, partial

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
TOKEN_PREFIX = "qst_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@lru_cache(maxsize=4096)
def pseudonym(secret: str, project_id: int, user_id: int) -> str:
    """The name of an annotator in one project, as its customer and its reviewers see them.

    A different name in each project: a customer cannot follow a worker from one of its
    projects to another, and two customers cannot match up the workers they share.
    Remembered for the most recent annotators: the annotation loop names its annotator in
    two audit events per answer, and an HMAC costs more than the rest of such an event's
    fields together.
    """
    digest = hmac.digest(secret.encode(), f"project:{project_id}:{user_id}".encode(), "sha256")
    return "annotator-" + digest.hex()[:10]


def pseudonyms(secret: str, project_id: int) -> Callable[[int], str]:
    """The project's pseudonym for each user id (what reports and the audit log are given)."""
    return partial(pseudonym, secret, project_id)
