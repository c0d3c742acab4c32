"""Media of organizations: the rows that make stored bytes readable, signed URLs, thumbnails.

Who may read a file:

- the organization's owners and members (and admins), with their credentials
  (``GET /api/v1/media/{sha256}``); another organization's hash answers 404, like a
  missing one;
- an annotator or reviewer through a **signed URL** handed out with their lease: an HMAC of
  the hash, the lease and an expiry, keyed from the server secret (every server process
  of a deployment agrees). It works while the signature is unexpired *and* the lease is
  live: once the lease is submitted, skipped or expired, the URL answers 403.

Task data keeps ``media:<sha256>``; ``present`` swaps those values for signed URLs in what
an annotator or reviewer receives.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from qistas.config import Settings
from qistas.db.dialect import insert_many_skipping_conflicts
from qistas.db.enums import LeaseStatus
from qistas.db.models import Media, User, table
from qistas.db.queries.media import THROUGH_LEASE
from qistas.db.types import utcnow
from qistas.domain import mediafiles
from qistas.domain.destinations import Policy
from qistas.domain.mediafiles import MediaInfo
from qistas.domain.mediaimports import MEDIA_REF, Limits, ref_hash
from qistas.domain.mediastore import MediaStore, blob_key, spooled, thumb_key
from qistas.errors import Forbidden, Invalid, NotFound

URL_PREFIX = "/api/v1/media/"
THUMB_SIZE = 256
POLICY_KEYS = {"max_bytes", "types", "fetch_urls"}
RECORD_CHUNK = 1000


# --- a project's limits ----------------------------------------------------------------------


def parse_policy(raw: Any) -> dict[str, Any]:
    """A project's ``media`` setting, checked: ``max_bytes`` (at most the server's limit is
    applied), ``types`` (a subset of the media types Qistas can show), ``fetch_urls``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("media must be an object", details={"field": "media"})
    unknown = raw.keys() - POLICY_KEYS
    if unknown:
        name = f"media.{sorted(unknown)[0]}"
        raise Invalid(f"{name} is not a known field", details={"field": name})
    max_bytes = raw.get("max_bytes")
    if max_bytes is not None and (not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1):
        raise Invalid("media.max_bytes must be a positive integer", details={"field": "media.max_bytes"})
    types = raw.get("types")
    if types is not None:
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise Invalid("media.types must be a list of media types", details={"field": "media.types"})
        unknown_types = [t for t in types if t not in mediafiles.DEFAULT_TYPES]
        if unknown_types:
            raise Invalid(f"media.types: {unknown_types[0]!r} is not a type Qistas accepts (one of "
                          f"{', '.join(sorted(mediafiles.DEFAULT_TYPES))})", details={"field": "media.types"})
    fetch = raw.get("fetch_urls")
    if fetch is not None and not isinstance(fetch, bool):
        raise Invalid("media.fetch_urls must be true or false", details={"field": "media.fetch_urls"})
    return dict(raw)


def limits_for(settings: Settings, policy: dict[str, Any]) -> Limits:
    return Limits(
        types=frozenset(policy.get("types") or mediafiles.DEFAULT_TYPES),
        max_bytes=min(policy.get("max_bytes") or settings.media_max_bytes, settings.media_max_bytes),
        max_pixels=settings.media_max_pixels,
        fetch_urls=bool(policy.get("fetch_urls", False)),
        fetch_timeout=settings.media_fetch_timeout_seconds,
        policy=Policy.from_settings(settings),
    )


# --- rows --------------------------------------------------------------------------------------


def record(session: Session, *, org_id: int, infos: Iterable[MediaInfo]) -> int:
    """Make stored files readable to the organization (in the import's transaction), a
    chunk of rows per statement; returns how many were new to it."""
    now = utcnow()
    added = 0
    items = iter(infos)
    while chunk := list(islice(items, RECORD_CHUNK)):
        rows = [{"org_id": org_id, "sha256": i.sha256, "content_type": i.content_type, "size": i.size,
                 "width": i.width, "height": i.height, "duration": i.duration, "created_at": now} for i in chunk]
        added += insert_many_skipping_conflicts(session, table(Media), rows, ["org_id", "sha256"])
    return added


def org_of(session: Session, actor: User, sha256: str) -> int | None:
    """The organization whose file of this hash the actor would read: their own; for an
    admin, the first organization that imported it."""
    if actor.org_id is not None:
        return actor.org_id
    return session.scalar(select(Media.org_id).where(Media.sha256 == sha256).order_by(Media.id).limit(1))


def find(session: Session, *, org_id: int, sha256: str) -> Media:
    media = session.scalar(select(Media).where(Media.org_id == org_id, Media.sha256 == sha256))
    if media is None:
        raise NotFound("media not found")
    return media


# --- signed URLs -------------------------------------------------------------------------------


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"qistas-media-url|" + secret.encode()).digest()


def signature(secret: str, *, sha256: str, scope: str, expires: int) -> str:
    return hmac.new(_key(secret), f"{sha256}|{scope}|{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(secret: str, *, sha256: str, scope: str, expires: int) -> str:
    query = urlencode({"scope": scope, "expires": expires,
                       "sig": signature(secret, sha256=sha256, scope=scope, expires=expires)})
    return f"{URL_PREFIX}{sha256}?{query}"


def present(data: dict[str, Any], *, secret: str, scope: str, expires: int) -> dict[str, Any]:
    """Task data as an annotator or reviewer receives it: ``media:<sha256>`` values as signed URLs."""
    if not any(isinstance(v, str) and v.startswith("media:") for v in data.values()):
        return data
    out = dict(data)
    for key, value in data.items():
        sha256 = ref_hash(value)
        if sha256 is not None:
            out[key] = signed_url(secret, sha256=sha256, scope=scope, expires=expires)
    return out


def url_expiry(settings: Settings, *, lease_expires: datetime | None, now: datetime) -> int:
    """When a URL handed out with a lease stops: the lease's end, at most ``media_url_seconds`` away."""
    latest = now.timestamp() + settings.media_url_seconds
    end = min(lease_expires.timestamp(), latest) if lease_expires is not None else latest
    return int(end) + 1


def verify(keys: Sequence[str], *, sha256: str, scope: str, expires: int, sig: str, now: datetime) -> None:
    """Raise NotFound for a signature that does not match, Forbidden for one past its expiry.

    ``keys``: the secret key, then the previous ones, so a URL handed out by a server not yet
    restarted with a rotated key still works on one that was.
    """
    if not sig.isascii():  # no signature is; compare_digest refuses to compare such text
        raise NotFound("media not found")
    matches = [hmac.compare_digest(signature(key, sha256=sha256, scope=scope, expires=expires), sig) for key in keys]
    if not any(matches):
        raise NotFound("media not found")
    if expires < now.timestamp():
        raise Forbidden("this media link has expired", details={"expires": expires})


class LeasedMedia(NamedTuple):
    sha256: str
    content_type: str


def leased_media(session: Session, *, sha256: str, scope: str, now: datetime) -> LeasedMedia:
    """The file a signed URL names (its ``sha256`` and ``content_type``), while the lease it was
    handed out with is live."""
    kind, ident = scope[:1], scope[1:]
    if kind not in THROUGH_LEASE or not ident.isdigit() or len(ident) > 18:
        raise NotFound("media not found")
    row = THROUGH_LEASE[kind].first(session, lease_id=int(ident), sha256=sha256)
    if row is None:
        raise NotFound("media not found")
    if row.status != LeaseStatus.ACTIVE or (row.expires_at is not None and row.expires_at <= now):
        raise Forbidden("the lease this media link was given with has ended")
    if row.sha256 is None or row.content_type is None:
        raise NotFound("media not found")
    return LeasedMedia(row.sha256, row.content_type)


def task_refs(data: dict[str, Any]) -> list[str]:
    return [m.group(1) for v in data.values() if isinstance(v, str) and (m := MEDIA_REF.fullmatch(v))]


# --- bytes ---------------------------------------------------------------------------------------


def thumbnail(store: MediaStore, media: Media) -> str:
    """The key of the image's thumbnail (made on first request): at most 256 px a side, JPEG,
    EXIF orientation applied."""
    key = thumb_key(media.sha256)
    if store.exists(key):
        return key
    if not media.content_type.startswith("image/"):
        raise NotFound("this media has no thumbnail")
    from PIL import Image, ImageOps  # noqa: PLC0415

    with spooled(store) as source, spooled(store) as target:
        with source.open("wb") as out:
            for chunk in store.iter_bytes(blob_key(media.sha256)):
                out.write(chunk)
        with Image.open(source) as image:
            shown = ImageOps.exif_transpose(image)
            shown.thumbnail((THUMB_SIZE, THUMB_SIZE))
            shown.convert("RGB").save(target, "JPEG", quality=80)
        store.put_file(key, Path(target), "image/jpeg")
    return key


def purge(session: Session, store: MediaStore, *, older_than: datetime) -> int:
    """Remove stored files no organization's row names (an import refused after its files were
    stored, or a crash between the two), once older than ``older_than``; the count removed."""
    known = set(session.scalars(select(Media.sha256).distinct()))
    removed = 0
    local_root = getattr(store, "root", None)
    for key in list(store.keys("blobs/")):
        sha256 = key.rsplit("/", 1)[-1]
        if sha256 in known:
            continue
        if local_root is not None and Path(local_root, key).stat().st_mtime >= older_than.timestamp():
            continue
        store.delete(key)
        store.delete(thumb_key(sha256))
        removed += 1
    return removed
