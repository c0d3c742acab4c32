"""Where webhooks and callbacks may go: the server-side request forgery (SSRF) guard.

A destination is checked when it is registered and again at every connect. The hostname is
resolved and *every* address must be public: no loopback, private, link-local (cloud
metadata at 169.254.169.254 lives there), shared, multicast, reserved or unspecified
address, IPv4 or IPv6, also when wrapped in an IPv4-mapped IPv6 address. The sender then
connects to the address it checked, not to the name, so a DNS answer that changes between
the check and the connect (DNS rebinding) cannot redirect it. Operators may allow
non-public destinations explicitly: all of them (``QISTAS_WEBHOOK_ALLOW_PRIVATE``) or some
networks (``QISTAS_WEBHOOK_ALLOWED_NETWORKS``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from qistas.errors import Invalid

if TYPE_CHECKING:
    from qistas.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2048


class Blocked(Invalid):
    """The destination is not allowed (or cannot be resolved)."""

    code = "invalid"


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        networks = [ipaddress.ip_network(raw.strip(), strict=False)
                     for raw in settings.webhook_allowed_networks.split(",") if raw.strip()]
        return cls(allow_private=settings.webhook_allow_private, allowed_networks=tuple(networks))

    def permits(self, address: IPAddress) -> bool:
        if self.allow_private:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed_networks):
            return True
        return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to ``addresses``, say ``host`` in Host and SNI."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _parse(url: str, field_name: str) -> tuple[str, str, int]:
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise Blocked(f"{field_name} must be a URL of at most {MAX_URL} characters", details={"field": field_name})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Blocked(f"{field_name} is not a valid URL", details={"field": field_name}) from None
    if parts.scheme not in ("http", "https"):
        raise Blocked(f"{field_name} must be an http or https URL", details={"field": field_name})
    host = parts.hostname
    if not host:
        raise Blocked(f"{field_name} has no host", details={"field": field_name})
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def check_syntax(url: str, *, field_name: str = "url") -> None:
    """The cheap part of the check: an http(s) URL with a host."""
    _parse(url, field_name)


def resolve(url: str, policy: Policy, *, field_name: str = "url") -> Target:
    """Resolve ``url``'s host and check every address; raise ``Blocked`` if any is refused."""
    scheme, host, port = _parse(url, field_name)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            message = f"{field_name}: the host {host!r} cannot be resolved"
            raise Blocked(message, details={"field": field_name}) from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise Blocked(f"{field_name}: the host {host!r} has no address", details={"field": field_name})
    for address in found:
        if not policy.permits(address):
            raise Blocked(
                f"{field_name}: {host} resolves to {address}, a non-public address; "
                "an admin may allow it with QISTAS_WEBHOOK_ALLOW_PRIVATE or QISTAS_WEBHOOK_ALLOWED_NETWORKS",
                details={"field": field_name},
            )
    unique = tuple(dict.fromkeys(str(a) for a in found))
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=unique)
