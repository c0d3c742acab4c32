"""Where webhooks and callbacks may go: the server-side request forgery (SSRF) guard.

A destination is checked when it is registered and again at every connect. The hostname is
resolved and *every* address must be public: no loopback, private, link-local (cloud
metadata at 169.254.169.254 lives there), shared, multicast, reserved or unspecified
address, IPv4 or IPv6. An IPv6 address that carries an IPv4 address (IPv4-mapped
``::ffff:0:0/96``, IPv4-compatible ``::/96``, IPv4-translated ``::ffff:0:0:0/96``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``, an ISATAP interface id) is
allowed only if that IPv4 address is public too; the mapped, compatible and translated
forms are the IPv4 address itself and are judged by it alone. The local-use NAT64 prefix
``64:ff9b:1::/48`` places the IPv4 address where its operator chose, so it is refused.
A refusal says only that the destination is not allowed: never what a name resolved to,
which would map the internal network for the caller. The sender then
connects to the address it checked, not to the name, so a DNS answer that changes between
the check and the connect (DNS rebinding) cannot redirect it. Operators may allow
non-public destinations explicitly: all of them (``QISTAS_WEBHOOK_ALLOW_PRIVATE``) or some
networks (``QISTAS_WEBHOOK_ALLOWED_NETWORKS``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from qistas.errors import Invalid

if TYPE_CHECKING:
    from qistas.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2048

# IPv6 forms that are an IPv4 address (judged by it alone) and tunnels that carry one.
_AS_IPV4 = (ipaddress.IPv6Network("::/96"), ipaddress.IPv6Network("::ffff:0:0:0/96"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)


def _low32(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def ipv4_inside(address: ipaddress.IPv6Address) -> tuple[tuple[ipaddress.IPv4Address, ...], bool]:
    """The IPv4 addresses an IPv6 address carries, and whether it *is* that IPv4 address
    (mapped, compatible, translated) rather than a tunnel towards it (NAT64, 6to4, Teredo, ISATAP)."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,), True
    if any(address in network for network in _AS_IPV4):
        return (_low32(address),), True
    if address in _NAT64:
        return (_low32(address),), False
    if address.sixtofour is not None:
        return (address.sixtofour,), False
    if address.teredo is not None:
        return address.teredo, False
    if (int(address) >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        return (_low32(address),), False
    return (), False


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
        if self.allow_private or any(address in network for network in self.allowed_networks):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            if address in _NAT64_LOCAL:
                return False
            inside, itself = ipv4_inside(address)
            if inside and not all(self.permits(v4) for v4 in inside):
                return False
            if itself:
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


def _not_allowed(field_name: str) -> Blocked:
    # One answer whether the name does not resolve or resolves to a refused address.
    return Blocked(f"{field_name}: this destination is not allowed; webhooks and callbacks go to public "
                   "addresses only", details={"field": field_name})


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
            raise _not_allowed(field_name) from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found or not all(policy.permits(address) for address in found):
        raise _not_allowed(field_name)
    unique = tuple(dict.fromkeys(str(a) for a in found))
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=unique)


def callback_checker(settings: Settings) -> Callable[[str], None]:
    """Vet the callback URLs of an import's tasks (raising ``Invalid``), resolving each host
    once per import."""
    policy = Policy.from_settings(settings)
    seen: dict[tuple[str | None, int | None], str | None] = {}

    def check(url: str) -> None:
        check_syntax(url, field_name="callback_url")
        parts = urlsplit(url)
        key = (parts.hostname, parts.port)
        if key not in seen:
            try:
                resolve(url, policy, field_name="callback_url")
                seen[key] = None
            except Invalid as exc:
                seen[key] = exc.message
        problem = seen[key]
        if problem is not None:
            raise Invalid(problem)

    return check
