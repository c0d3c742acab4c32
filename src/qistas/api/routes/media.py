"""Serving media: to the organization's people with their credentials, to annotators and
reviewers through the signed URLs handed out with their leases (domain/media.py).

Every answer says ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy:
sandbox``; its type is the one read from the bytes at import. Only images and audio are
stored, and only they are shown inline.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from qistas.api.deps import AppSettings, Db, current_actor
from qistas.db.engine import Database
from qistas.db.models import Media
from qistas.db.types import utcnow
from qistas.db.unit_of_work import read, read_now
from qistas.domain import media
from qistas.domain.mediafiles import INLINE_TYPES
from qistas.domain.mediastore import MediaStore, blob_key
from qistas.policies import ensure_media_reader

router = APIRouter(tags=["media"])
SMALL_FILE_BYTES = 256 * 1024  # sent from memory; larger files stream from disk
Sha256 = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="the SHA-256 of the file's bytes")]


def media_headers(content_type: str, max_age: int) -> dict[str, str]:
    """The headers of every media answer but its type and length."""
    disposition = "inline" if content_type in INLINE_TYPES else "attachment"
    return {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
            "Content-Disposition": disposition, "Cache-Control": f"private, max-age={max_age}",
            "Cross-Origin-Resource-Policy": "same-origin"}


def small_file(store: MediaStore, key: str) -> bytes | None:
    """The bytes of a small file on local storage, read whole; else None.

    Read at once, a few hundred kilobytes at most from the local disk: a FileResponse takes
    four trips to the thread pool (stat, open, read, close), which cost the server more than
    the rest of the request and, with the annotation page fetching an image per task, took
    half the annotation loop's throughput (benchmarks/media.py, docs/benchmarks.md)."""
    path = store.local_path(key)
    if path is None:
        return None
    try:
        with path.open("rb") as handle:
            data = handle.read(SMALL_FILE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= SMALL_FILE_BYTES else None


def _send(store: MediaStore, key: str, content_type: str, max_age: int, small: bytes | None = None) -> Response:
    headers = media_headers(content_type, max_age)
    if small is not None:
        return Response(small, media_type=content_type, headers={**headers, "Accept-Ranges": "bytes"})
    path = store.local_path(key)
    if path is not None:
        return FileResponse(path, media_type=content_type, headers=headers)
    return StreamingResponse(store.iter_bytes(key), media_type=content_type, headers=headers)


@router.get("/media/{sha256}", response_class=Response,
            responses={200: {"description": "the file's bytes", "content": {"image/*": {}, "audio/*": {}}}})
async def get_media(
    sha256: Sha256, request: Request, db: Db, settings: AppSettings,
    scope: Annotated[str | None, Query(max_length=32, description="signed URLs: the lease")] = None,
    expires: Annotated[int | None, Query(description="signed URLs: when the link stops (Unix seconds)")] = None,
    sig: Annotated[str | None, Query(max_length=64, description="signed URLs: the signature")] = None,
) -> Response:
    """A media file: with a signed URL's ``scope``, ``expires`` and ``sig`` (no credentials:
    the signature is one), or with the credentials of the organization's people."""
    store: MediaStore = request.app.state.media_store
    if scope is not None or expires is not None or sig is not None:
        now = utcnow()
        media.verify([settings.secret_key or "", *settings.previous_keys], sha256=sha256, scope=scope or "",
                     expires=expires or 0, sig=sig or "", now=now)

        # Each task's image is fetched as its lease is taken: a request of the annotation loop,
        # read on the event loop on SQLite (a trip to the thread pool cost more than the lookup
        # and the file's read together).
        leased = await read_now(db, lambda s: media.leased_media(s, sha256=sha256, scope=scope or "", now=now))
        small = None if "range" in request.headers else small_file(store, blob_key(leased.sha256))
        return _send(store, blob_key(leased.sha256), leased.content_type, max_age=settings.media_url_seconds,
                     small=small)
    found = await run_in_threadpool(_customer_media, request, db, sha256)
    return _send(store, blob_key(found.sha256), found.content_type, max_age=300)


@router.get("/media/{sha256}/thumbnail", response_class=Response,
            responses={200: {"description": "a JPEG at most 256 pixels a side", "content": {"image/jpeg": {}}}})
async def get_thumbnail(sha256: Sha256, request: Request, db: Db) -> Response:
    """A small JPEG of an image, EXIF orientation applied: for the console."""
    store: MediaStore = request.app.state.media_store
    found = await run_in_threadpool(_customer_media, request, db, sha256)
    key = await run_in_threadpool(media.thumbnail, store, found)
    return _send(store, key, "image/jpeg", max_age=300)


def _customer_media(request: Request, db: Database, sha256: str) -> Media:
    """The file, to the organization's people (their credentials, a token or the browser's session)."""
    actor = current_actor(request, db)

    def find(session: Session) -> Media:
        return media.find(session, org_id=ensure_media_reader(actor, media.org_of(session, actor, sha256)),
                          sha256=sha256)

    return read(db, find)
