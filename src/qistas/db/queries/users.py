"""The bearer token's statement: every API request the token cache does not answer runs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from qistas.db.models import ApiToken, User, table
from qistas.db.prepared import Prepared, detached, mapped_columns

_tokens = table(ApiToken).c
_user_columns = mapped_columns(User)


class TokenGrant(NamedTuple):
    user: User  # detached, every column loaded
    token_id: int
    scope: str
    expires_at: datetime | None
    last_used_at: datetime | None


def _grant(*values: Any) -> TokenGrant:
    n = len(_user_columns)
    return TokenGrant(detached(User, values[:n]), *values[n:])


# An unrevoked token of an active user, with that user.
BY_TOKEN = Prepared(
    select(*_user_columns, _tokens.id.label("token_id"), _tokens.scope, _tokens.expires_at, _tokens.last_used_at)
    .join_from(table(User), table(ApiToken), _tokens.user_id == table(User).c.id)
    .where(_tokens.token_hash == bindparam("token_hash"), _tokens.revoked_at.is_(None),
           table(User).c.is_active.is_(True)),
    _grant,
)
