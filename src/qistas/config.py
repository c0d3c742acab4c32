"""Settings, read from the environment (prefix ``QISTAS_``) by :func:`get_settings`.

Nothing happens at import time: no directory is created and no file is read until
``get_settings()`` is called. The secret key is never a default: when none is given it is
generated once and kept in ``QISTAS_HOME/secret_key`` (mode 0600).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qistas.errors import ConfigError

_MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Every setting of a Qistas server. Each field is documented in ``docs/settings.md``."""

    model_config = SettingsConfigDict(env_prefix="QISTAS_", extra="ignore")

    home: Path = Field(
        default=Path("~/.qistas"),
        description="Folder for the SQLite database, the secret key and media files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; plain postgresql:// URLs use psycopg 3. "
        "Default: an SQLite file qistas.db under home.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Key for session cookies and pseudonyms; generated under home when unset.",
    )
    lease_seconds: int = Field(
        default=600, ge=10, le=86_400, description="How long an assignment lease lasts."
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest JSON request body accepted."
    )
    max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest uploaded import file accepted."
    )
    max_page_size: int = Field(default=1000, ge=1, description="Largest `limit` of a page.")
    default_page_size: int = Field(default=100, ge=1, description="`limit` when none is given.")
    max_import_errors: int = Field(
        default=100, ge=1, description="Row errors listed in a rejected import (all are counted)."
    )
    refit_interval_seconds: float = Field(
        default=60.0, ge=0, description="How often the worker models are refitted in the background; 0 turns it off."
    )
    cookie_secure: bool = Field(
        default=False,
        description="Mark session cookies Secure; turn on behind HTTPS.",
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < _MIN_SECRET_LENGTH:
            raise ValueError(f"QISTAS_SECRET_KEY must be at least {_MIN_SECRET_LENGTH} characters")
        return value

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
    if path.exists():
        value = path.read_text().strip()
        if len(value) < _MIN_SECRET_LENGTH:
            raise ConfigError(f"{path} holds a secret key shorter than {_MIN_SECRET_LENGTH}")
        return value
    value = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together never overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_or_create_secret(home)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, create ``home`` and settle the secret key."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    settings.home.mkdir(parents=True, exist_ok=True)
    if settings.secret_key is None:
        settings.secret_key = _load_or_create_secret(settings.home)
    return settings
