from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from qistas.api.schemas import Incoming


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


class TokenCreate(Incoming):
    name: str = Field(default="", max_length=100)


class TokenRead(BaseModel):
    token: str = Field(description="shown once; only its hash is stored")
