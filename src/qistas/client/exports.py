"""Exports from the SDK: streamed into a file (or a folder for ``hf``), or as server jobs."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qistas.client.errors import raise_for_error
from qistas.client.jobs import ServerJob
from qistas.client.models import ExportInfo

if TYPE_CHECKING:
    from qistas.client.client import Client


def _unpack_hf(tar_path: Path, target: Path) -> None:
    """Unpack the single folder of an ``hf`` export as ``target``."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, tarfile.open(tar_path) as tar:
        tar.extractall(tmp, filter="data")
        (inner,) = Path(tmp).iterdir()
        if target.exists():
            shutil.rmtree(target)
        inner.replace(target)


def stream_export(client: Client, url: str, target: Path, *, params: dict[str, Any] | None = None,
                  folder: bool = False, on_progress: Callable[[int], None] | None = None) -> ExportInfo:
    """Download ``url`` to ``target.partial``, then rename: ``target`` only ever holds a whole export."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as handle, client.http.stream("GET", url, params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise_for_error(response)
            total, cursor = response.headers.get("qistas-total"), response.headers.get("qistas-cursor")
            for chunk in response.iter_bytes():
                handle.write(chunk)
                if on_progress is not None:
                    on_progress(len(chunk))
        if folder:
            _unpack_hf(partial, target)
            partial.unlink()
        else:
            partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportInfo(path=str(target), total=int(total) if total else None, cursor=cursor)


class ExportJob(ServerJob):
    """A server-side export. ``refresh()``, ``wait()``, ``download(path)``."""

    PATH = "/exports"
    NOUN = "export"

    def __repr__(self) -> str:
        return f"ExportJob(id={self.id}, format={self.format!r}, status={self.status!r})"

    format = property(lambda self: self.data["format"])
    progress = property(lambda self: self.data.get("progress"))
    cursor = property(lambda self: self.data.get("cursor"))

    def download(self, path: str | Path, *, on_progress: Callable[[int], None] | None = None) -> ExportInfo:
        info = stream_export(self._client, f"/exports/{self.id}/file", Path(path), folder=self.format == "hf",
                             on_progress=on_progress)
        return ExportInfo(path=info.path, total=self.data.get("rows_total"), cursor=self.cursor)


class Exports:
    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, job_id: int) -> ExportJob:
        return ExportJob(self._client, self._client.request("GET", f"/exports/{job_id}").json())

    def list(self, project_id: int) -> list[ExportJob]:
        found = self._client.request("GET", f"/projects/{project_id}/exports").json()
        return [ExportJob(self._client, j) for j in found]
