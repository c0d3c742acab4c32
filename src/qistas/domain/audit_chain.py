"""The audit log's hash chain and signed checkpoints, and their offline verification.

No database here: the server links and signs events with these functions, and
``qistas audit verify`` checks an exported log with the same ones, on any machine.

An event's ``hash`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of
its fields: ``org``, ``seq``, ``at``, ``actor``, ``action``, ``object_type``, ``object_id``,
``details`` and ``prev_hash`` (the previous event's hash; 64 zeros before the first). A
checkpoint is an Ed25519 signature over the canonical JSON of ``org``, ``seq``, ``hash``,
``at`` and ``key_id``. The signing key is derived from the instance's secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

GENESIS = "0" * 64
EXPORT_FORMAT = "qistas-audit-log/1"
EVENT_FIELDS = ("org", "seq", "at", "actor", "action", "object_type", "object_id", "details", "prev_hash")
CHECKPOINT_FIELDS = ("org", "seq", "hash", "at", "key_id")
_KEY_LABEL = b"qistas audit checkpoint key v1"


def _plain(value: Any) -> Any:
    """Numbers as PostgreSQL's JSONB gives them back: a float without a fraction is an integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# One encoder for every hash; JSON values hold no cycles, so none is looked for.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                              check_circular=False)


def canonical(value: dict[str, Any]) -> bytes:
    return _CANONICAL.encode(_plain(value)).encode()


# Values that read back from the database as they went in: details made only of these
# (the annotation loop's ``{"assignment": 7}``) need no round trip through JSON text.
_SCALARS = frozenset({str, int, bool, type(None)})


def is_plain(details: dict[str, Any] | None) -> bool:
    """Whether details hold only strings, integers, flags and nulls, under string keys: what
    ``event_hash(plain=True)`` may hash without its walk for whole floats."""
    return details is None or all(type(key) is str and type(value) in _SCALARS for key, value in details.items())


def normal_details(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """Details as they will read back from the database: JSON values only (a time or another
    object as its text), whole floats as integers."""
    if details is None:
        return None
    if is_plain(details):
        return dict(details)
    plain: dict[str, Any] = _plain(json.loads(json.dumps(details, default=str)))
    return plain


def time_text(at: datetime) -> str:
    """``2026-12-01T09:30:00.000123Z``: the event's time as the chain hashes it."""
    utc = at if at.tzinfo is UTC else at.astimezone(UTC)
    if utc.year < 1000:  # strftime writes such a year without leading zeros
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # strftime's text, in a third of its CPU (written for every event; an f-string with a
    # format per field takes twice as long as this one format)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond)


def event_hash(fields: dict[str, Any], *, plain: bool = False) -> str:
    """The SHA-256 of the event's canonical JSON. ``plain``: the fields hold JSON values only
    already (``normal_details``' details, integers, strings), as ``audit.record`` builds them,
    so the walk that turns whole floats into integers is left out (half the time); the text
    is the same."""
    chosen = {name: fields[name] for name in EVENT_FIELDS}
    text = _CANONICAL.encode(chosen).encode() if plain else canonical(chosen)
    return hashlib.sha256(text).hexdigest()


@dataclass(frozen=True)
class Signer:
    """The instance's checkpoint key pair."""

    private_key: Ed25519PrivateKey

    @classmethod
    def from_secret(cls, secret: str) -> Signer:
        seed = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> str:
        """The raw 32-byte public key, base64."""
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    @property
    def public_key_pem(self) -> str:
        return self.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, checkpoint: dict[str, Any]) -> str:
        return self.private_key.sign(canonical({name: checkpoint[name] for name in CHECKPOINT_FIELDS})).hex()


def key_id(public_key: str) -> str:
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key as ``GET /api/v1/audit/public-key`` gives it: base64 of the raw 32 bytes, or PEM."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError("not an Ed25519 public key (base64 of 32 bytes, or PEM)") from exc


def signature_valid(public_key: Ed25519PublicKey, checkpoint: dict[str, Any]) -> bool:
    try:
        signature = bytes.fromhex(checkpoint["signature"])
        public_key.verify(signature, canonical({name: checkpoint[name] for name in CHECKPOINT_FIELDS}))
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False
    return True


@dataclass
class Verdict:
    """What ``verify`` found: the first problem (``None`` when the log is intact)."""

    events: int = 0
    checkpoints: int = 0
    problem: str | None = None
    line: int | None = None
    seq: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Broken(Exception):
    def __init__(self, line: int, seq: int | None, message: str) -> None:
        super().__init__(message)
        self.line, self.seq, self.message = line, seq, message


def verify(lines: Iterable[str], *, public_key: str | None = None) -> Verdict:
    """Check an exported audit log: each event's hash, the links between them, the sequence
    from 1 without gaps, and every checkpoint's signature and hash. Stops at the first problem."""
    verdict = Verdict()
    try:
        _verify(lines, public_key, verdict)
    except _Broken as broken:
        verdict.problem, verdict.line, verdict.seq = broken.message, broken.line, broken.seq
    return verdict


def _verify(lines: Iterable[str], public_key: str | None, verdict: Verdict) -> None:
    hashes: dict[int, str] = {}
    checkpoints: list[tuple[int, dict[str, Any]]] = []
    header: dict[str, Any] | None = None
    org: Any = None
    previous = GENESIS
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            raise _Broken(number, None, "not a JSON line") from None
        if not isinstance(row, dict):
            raise _Broken(number, None, "not a JSON object")
        kind = row.get("type")
        if header is None:
            if kind != "audit-log" or row.get("format") != EXPORT_FORMAT:
                raise _Broken(number, None, f"the first line is not a {EXPORT_FORMAT} header")
            header, org = row, row.get("org")
            continue
        if kind == "checkpoint":
            checkpoints.append((number, row))
            continue
        if kind != "event":
            raise _Broken(number, None, f"unknown line type {kind!r}")
        seq = row.get("seq")
        expected = len(hashes) + 1
        if seq != expected:
            raise _Broken(number, seq if isinstance(seq, int) else None,
                          f"expected event {expected}, found {seq!r}: an event is missing or out of order")
        if row.get("org") != org:
            raise _Broken(number, seq, f"event {seq} belongs to organization {row.get('org')!r}, not {org!r}")
        if row.get("prev_hash") != previous:
            raise _Broken(number, seq, f"event {seq} does not follow event {seq - 1}: its prev_hash differs")
        try:
            computed = event_hash(row)
        except (KeyError, TypeError, ValueError):
            raise _Broken(number, seq, f"event {seq} lacks a field of the chain") from None
        if computed != row.get("hash"):
            raise _Broken(number, seq, f"event {seq} was changed: its hash does not match its contents")
        hashes[seq] = previous = computed
        verdict.events += 1
    if header is None:
        raise _Broken(0, None, "the file is empty")
    _check_checkpoints(checkpoints, hashes, org, public_key or header.get("public_key"), verdict)
    if public_key is None:
        verdict.warnings.append("checkpoints were checked against the key inside the file; give the "
                                "instance's public key (--public-key) to know who signed them")


def _check_checkpoints(checkpoints: list[tuple[int, dict[str, Any]]], hashes: dict[int, str], org: Any,
                       public_key: str | None, verdict: Verdict) -> None:
    if not checkpoints:
        verdict.warnings.append("the log has no checkpoint: nothing signed vouches for it")
        return
    try:
        key = load_public_key(public_key or "")
    except ValueError:
        raise _Broken(0, None, "no usable public key to check the checkpoints with") from None
    for number, checkpoint in checkpoints:
        seq = checkpoint.get("seq")
        if checkpoint.get("org") != org:
            raise _Broken(number, None, f"a checkpoint of organization {checkpoint.get('org')!r}, not {org!r}")
        if not signature_valid(key, checkpoint):
            raise _Broken(number, seq if isinstance(seq, int) else None,
                          f"the checkpoint at event {seq!r} has no valid signature by this key")
        assert isinstance(seq, int)
        if seq not in hashes:
            raise _Broken(number, seq, f"a checkpoint vouches for event {seq}, which the log lacks: "
                                       "events were removed from its end")
        if hashes[seq] != checkpoint.get("hash"):
            raise _Broken(number, seq, f"event {seq} differs from what the checkpoint signed: "
                                       "the log was rewritten")
        verdict.checkpoints += 1
