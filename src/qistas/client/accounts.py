"""Accounts from the SDK: users, tokens, deactivation and passwords (``client.users``,
``client.tokens``). Creating a user or a token sends an ``Idempotency-Key``, so a retry after a
lost connection gets the first answer instead of a second account or token."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from qistas.client.models import Deactivated, TokenInfo, User, parse

if TYPE_CHECKING:
    from qistas.client.client import Client


def _once() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


class Users:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, email: str, role: str, *, org: str | None = None, password: str | None = None,
               is_reviewer: bool = False) -> User:
        """Without a password, the answer's ``sign_in_link`` (shown once) lets its person choose one."""
        body: dict[str, Any] = {"email": email, "role": role, "is_reviewer": is_reviewer}
        if org is not None:
            body["org"] = org
        if password is not None:
            body["password"] = password
        response = self._client.request("POST", "/users", json=body, headers=_once(), retry=True)
        return parse(User, response.json())

    def list(self, *, email: str | None = None, page_size: int = 1000) -> list[User]:
        """Every user you may see (an admin, all; an owner, their organization's), read a page at
        a time; ``email``: only those whose address holds it, in any case."""
        return [parse(User, u) for u in self._client.pages("/users", page_size=page_size, email=email)]

    def me(self) -> User:
        return parse(User, self._client.request("GET", "/me").json())

    def deactivate(self, user_id: int) -> Deactivated:
        """Revokes the user's tokens, ends their browser sessions and gives their leases back."""
        return parse(Deactivated, self._client.request("POST", f"/users/{user_id}/deactivate", retry=True).json())

    def reactivate(self, user_id: int) -> User:
        """They may sign in again; their old tokens stay revoked."""
        return parse(User, self._client.request("POST", f"/users/{user_id}/reactivate", retry=True).json())

    def set_password(self, user_id: int, password: str) -> None:
        """An owner (their organization's users) or an admin; the user's browser sessions end."""
        self._client.request("POST", f"/users/{user_id}/password", json={"password": password}, retry=True)

    def change_password(self, current_password: str, new_password: str) -> None:
        """Your own; a wrong ``current_password`` raises ``Invalid`` (code ``wrong_password``)."""
        body = {"current_password": current_password, "new_password": new_password}
        self._client.request("POST", "/users/me/password", json=body)


class Tokens:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, user_id: int | None = None, *, name: str = "", scope: str = "admin",
               expires_in_days: int | None = None) -> str:
        """A new token of the user (yourself by default), returned once: only its hash is stored.
        ``scope``: ``read``, ``annotate`` or ``admin``."""
        if user_id is None:
            user_id = self._client.users.me().id
        body: dict[str, Any] = {"name": name, "scope": scope}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        response = self._client.request("POST", f"/users/{user_id}/tokens", json=body, headers=_once(), retry=True)
        token: str = response.json()["token"]
        return token

    def list(self, user_id: int | None = None) -> list[TokenInfo]:
        """The user's tokens (yours by default), newest first, never their secrets."""
        path = "/users/me/tokens" if user_id is None else f"/users/{user_id}/tokens"
        return [parse(TokenInfo, t) for t in self._client.request("GET", path).json()]

    def revoke(self, token_id: int) -> None:
        """Refused by every server process within a second."""
        self._client.request("DELETE", f"/tokens/{token_id}", retry=True)
