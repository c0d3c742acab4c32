from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming
from qistas.db.enums import TokenScope


class OrgCreate(Incoming):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=64)


class OrgRead(BaseModel):
    id: int
    name: str
    slug: str
    created_at: datetime


class UserCreate(Incoming):
    email: str = Field(min_length=3, max_length=320)
    role: str
    org: str | None = Field(default=None, description="organization slug")
    password: str | None = Field(default=None, min_length=8, max_length=1000)
    is_reviewer: bool = False


class UserRead(BaseModel):
    id: int
    email: str
    role: str
    org: str | None
    is_reviewer: bool
    is_active: bool = True


class UserPage(BaseModel):
    items: list[UserRead]
    next: int | None = Field(description="pass as `after` for the next page; null at the end")


class UserCreated(UserRead):
    sign_in_link: str | None = Field(
        default=None, description="for an account made without a password: a single-use path (under the "
        "server's address) where its person chooses a password; shown once, valid for 72 hours")


class TokenCreate(Incoming):
    name: str = Field(default="", max_length=100)
    scope: TokenScope = Field(default=TokenScope.ADMIN, description="read | annotate | admin")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenInfo(BaseModel):
    id: int
    name: str
    scope: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="to the minute: written at most once a minute")
    revoked_at: datetime | None


class PasswordChange(Incoming):
    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=8, max_length=1000)


class PasswordReset(Incoming):
    password: str = Field(min_length=8, max_length=1000)


class Deactivated(BaseModel):
    id: int
    is_active: bool
    released_leases: int = Field(description="active leases given back to the queue")


class TokenRead(BaseModel):
    token: str = Field(description="shown once; only its hash is stored")
