"""Secrets kept at rest, sealed with a key derived from the server's secret key.

    v1.<key id>.<Fernet token>

Each purpose (webhook signing secrets, stored API responses) gets its own key, derived from
``QISTAS_SECRET_KEY`` with HKDF-SHA256; Fernet (AES-128-CBC with HMAC-SHA256) seals the
value. The key id names the secret key that sealed it, so after a rotation the values sealed
with a previous key (``QISTAS_PREVIOUS_SECRET_KEYS``) are still opened, and ``qistas
rotate-secrets`` seals them again with the current one (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
from base64 import urlsafe_b64encode
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qistas.config import Settings
from qistas.errors import ConfigError

VERSION = "v1"
WEBHOOK_SECRET = "webhook-secret"
STORED_RESPONSE = "stored-response"


def key_id(secret_key: str) -> str:
    """A short public name for a secret key (it reveals nothing of the key)."""
    return hmac.new(secret_key.encode(), b"qistas-key-id", hashlib.sha256).hexdigest()[:12]


def _fernet(secret_key: str, purpose: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=f"qistas-sealing:{VERSION}:{purpose}".encode()).derive(secret_key.encode())
    return Fernet(urlsafe_b64encode(derived))


class Keyring:
    """The current secret key, which seals, and the previous ones, which only open."""

    def __init__(self, current: str, previous: Sequence[str] = ()) -> None:
        self.current_id = key_id(current)
        self._keys = {key_id(k): k for k in (*previous, current)}  # current last: wins on a repeat

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        if not settings.secret_key:
            raise ConfigError("sealing needs QISTAS_SECRET_KEY")
        return cls(settings.secret_key, settings.previous_keys)

    def seal(self, value: bytes, *, purpose: str) -> str:
        token = _fernet(self._keys[self.current_id], purpose).encrypt(value).decode("ascii")
        return f"{VERSION}.{self.current_id}.{token}"

    def open(self, sealed: str, *, purpose: str) -> bytes:
        version, kid, token = _parts(sealed)
        if version != VERSION:
            raise ConfigError(f"a sealed value has an unknown version {version!r}")
        secret_key = self._keys.get(kid)
        if secret_key is None:
            raise ConfigError(f"a value was sealed with key {kid}, which is neither QISTAS_SECRET_KEY nor "
                              "one of QISTAS_PREVIOUS_SECRET_KEYS")
        try:
            return _fernet(secret_key, purpose).decrypt(token.encode("ascii"))
        except InvalidToken:
            raise ConfigError(f"a value sealed with key {kid} does not open: it was altered") from None

    def is_current(self, sealed: str) -> bool:
        return _parts(sealed)[1] == self.current_id


def _parts(sealed: str) -> tuple[str, str, str]:
    version, _, rest = sealed.partition(".")
    kid, _, token = rest.partition(".")
    if not token:
        raise ConfigError("a stored secret is not sealed")
    return version, kid, token
