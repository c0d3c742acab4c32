from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AuditEventRead(BaseModel):
    org: int | None = Field(description="the organization's id; null on the instance's own chain")
    seq: int = Field(description="the event's number in its organization's chain, from 1, without gaps")
    at: str = Field(description="UTC time, as the hash covers it")
    actor: str = Field(description="`owner:ID`, `member:ID`, `admin:ID`, `system`, or an annotator's pseudonym")
    action: str
    object_type: str
    object_id: int | None
    details: dict[str, Any] | None
    prev_hash: str
    hash: str = Field(description="SHA-256 of the canonical JSON of the fields above and prev_hash")


class AuditCheckpointRead(BaseModel):
    org: int | None
    seq: int
    hash: str
    at: str
    key_id: str
    signature: str = Field(description="Ed25519 over the canonical JSON of org, seq, hash, at, key_id (hex)")


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    checkpoints: list[AuditCheckpointRead] = Field(description="checkpoints of the events this page spans")
    next: int | None = Field(description="the `after` of the next page")


class AuditPublicKey(BaseModel):
    algorithm: str = "Ed25519"
    public_key: str = Field(description="the raw 32-byte key, base64 (`qistas audit verify --public-key`)")
    key_id: str
    pem: str
