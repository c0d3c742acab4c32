"""Where media bytes live: a local folder (default) or an S3-compatible bucket.

Files are stored by the SHA-256 of their bytes (``blobs/ab/abcdef...``), so the same file
imported twice, by one organization or several, is kept once; who may read it is the
database's business (``domain.media``), never the store's. Thumbnails are kept beside
(``thumbs/ab/abcdef....jpg``) and made on first request.

``put_file`` moves a spooled file into place: on local storage a rename (the spool lives
in the same folder, ``tmp/``; a file from another file system is copied), on S3 an upload.
Writing a key that exists is skipped: the content is the same, by construction. Folders made
on local storage are private (0700), like the files: they hold customer data.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from qistas.config import Settings
from qistas.errors import ConfigError
from qistas.files import private_folder

CHUNK = 1 << 16


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256}"


def thumb_key(sha256: str) -> str:
    return f"thumbs/{sha256[:2]}/{sha256}.jpg"


class MediaStore(Protocol):
    def spool_dir(self) -> Path:
        """A folder for files being received, from which ``put_file`` moves them cheaply."""

    def exists(self, key: str) -> bool: ...

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at ``path`` under ``key`` (unless the key exists); ``path`` is gone after."""

    def local_path(self, key: str) -> Path | None:
        """The file of ``key`` on this machine, if the store is a folder."""

    def iter_bytes(self, key: str) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def close(self) -> None:
        """Release connections (the server's store, at shutdown)."""


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def spool_dir(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _path(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self._path(key)
        if target.is_file():
            path.unlink(missing_ok=True)
            return
        private_folder(target.parent)
        try:
            os.replace(path, target)  # on the same file system: a rename, atomic
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        fd, draft = tempfile.mkstemp(dir=self.spool_dir())
        with os.fdopen(fd, "wb") as out, path.open("rb") as source:
            shutil.copyfileobj(source, out, CHUNK)
        os.replace(draft, target)
        path.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def close(self) -> None:
        pass

    def keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file():
                yield path.relative_to(self.root).as_posix()


class S3Store:
    """An S3-compatible bucket through boto3 (AWS, MinIO, Ceph, R2 ...)."""

    def __init__(self, settings: Settings) -> None:
        import boto3  # noqa: PLC0415 -- only deployments on object storage pay for importing it
        from botocore.config import Config  # noqa: PLC0415

        assert settings.media_s3_bucket is not None
        self.bucket = settings.media_s3_bucket
        self.prefix = settings.media_s3_prefix
        self.client: Any = boto3.client(
            "s3", endpoint_url=settings.media_s3_endpoint_url, region_name=settings.media_s3_region,
            aws_access_key_id=settings.media_s3_access_key_id,
            aws_secret_access_key=settings.media_s3_secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )
        self._spool = Path(tempfile.gettempdir())

    def spool_dir(self) -> Path:
        return self._spool

    def _key(self, key: str) -> str:
        return self.prefix + key

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        try:
            if not self.exists(key):
                self.client.upload_file(str(path), self.bucket, self._key(key),
                                        ExtraArgs={"ContentType": content_type})
        finally:
            path.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return None

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def close(self) -> None:
        self.client.close()

    def keys(self, prefix: str) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix):]


def store_for(settings: Settings) -> MediaStore:
    """The store the settings name: the bucket when one is set, else the local folder."""
    if settings.media_s3_bucket:
        try:
            return S3Store(settings)
        except ImportError as exc:  # pragma: no cover -- boto3 is a dependency
            raise ConfigError(f"QISTAS_MEDIA_S3_BUCKET needs boto3: {exc}") from None
    return LocalStore(settings.media_folder)


@contextlib.contextmanager
def spooled(store: MediaStore) -> Iterator[Path]:
    """A fresh file in the store's spool folder, removed afterwards unless it was moved."""
    fd, name = tempfile.mkstemp(dir=store.spool_dir(), prefix="in-")
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
