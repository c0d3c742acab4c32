"""Resources of the SDK."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from qistas.client.errors import raise_for_error

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
IMPORT_CHUNK = 5000


class Client:
    def __init__(self, url: str, token: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=timeout,
        )
        self.projects = Projects(self)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        raise_for_error(response)
        return response

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def me(self) -> dict[str, Any]:
        return self.request("GET", "/me").json()


class Projects:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, **fields: Any) -> Project:
        return Project(self._client, self._client.request("POST", "/projects", json=fields).json())

    def get(self, project_id: int) -> Project:
        return Project(self._client, self._client.request("GET", f"/projects/{project_id}").json())

    def list(self) -> list[Project]:
        return [Project(self._client, p) for p in self._client.request("GET", "/projects").json()]


class Project:
    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self.data = data
        self.id: int = data["id"]
        self.tasks = Tasks(client, self.id)

    def __repr__(self) -> str:
        return f"Project(id={self.id}, name={self.data.get('name')!r})"

    def stats(self) -> dict[str, Any]:
        return self._client.request("GET", f"/projects/{self.id}/stats").json()

    def create_batch(self, name: str, callback_url: str | None = None) -> dict[str, Any]:
        body = {"name": name, "callback_url": callback_url}
        return self._client.request("POST", f"/projects/{self.id}/batches", json=body).json()

    def results(self, *, after: int | None = None, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if after is not None:
                params["after"] = after
            page = self._client.request("GET", f"/projects/{self.id}/results", params=params).json()
            yield from page["items"]
            if page["next"] is None:
                return
            after = page["next"]

    def export(self, *, format: str = "jsonl", path: str | Path | None = None,
               out: IO[bytes] | None = None) -> None:
        """Stream an export into ``path`` (written whole, then renamed) or a binary file."""
        target = Path(path) if path is not None else None
        partial = target.with_name(target.name + ".partial") if target else None
        handle = open(partial, "wb") if partial else out  # noqa: SIM115 - closed below
        if handle is None:
            raise ValueError("give path or out")
        try:
            with self._client.http.stream("GET", f"/projects/{self.id}/export", params={"format": format}) as r:
                if r.status_code >= 400:
                    r.read()
                    raise_for_error(r)
                for chunk in r.iter_bytes():
                    handle.write(chunk)
        finally:
            if partial:
                handle.close()
        if partial and target:
            partial.replace(target)

    # -- annotator side ---------------------------------------------------------------------

    def take(self) -> dict[str, Any] | None:
        response = self._client.request("POST", f"/projects/{self.id}/assignments")
        return None if response.status_code == 204 else response.json()

    def submit(self, assignment_id: int, answer: Any, seconds: float | None = None) -> dict[str, Any]:
        body = {"answer": answer, "seconds": seconds}
        return self._client.request("POST", f"/assignments/{assignment_id}/submit", json=body).json()

    def skip(self, assignment_id: int) -> None:
        self._client.request("POST", f"/assignments/{assignment_id}/skip")


class Tasks:
    def __init__(self, client: Client, project_id: int) -> None:
        self._client = client
        self._project_id = project_id

    def add(self, tasks: Iterable[dict[str, Any]], *, batch: str | None = None,
            chunk_size: int = IMPORT_CHUNK) -> dict[str, int]:
        """Import tasks in chunks; give them ``unique_id``s so a retried chunk is not doubled."""
        total = {"created": 0, "duplicates": 0}
        chunk: list[dict[str, Any]] = []

        def send() -> None:
            body = "\n".join(json.dumps(t, ensure_ascii=False) for t in chunk).encode()
            result = self._client.request(
                "POST", f"/projects/{self._project_id}/tasks", content=body,
                headers={"content-type": "application/x-ndjson"},
            ).json()
            total["created"] += result["created"]
            total["duplicates"] += result["duplicates"]
            chunk.clear()

        for task in tasks:
            chunk.append({**task, "batch": batch} if batch is not None else task)
            if len(chunk) >= chunk_size:
                send()
        if chunk:
            send()
        return total

    def upload(self, path: str | Path, *, format: str | None = None) -> dict[str, int]:
        """Send a JSONL / CSV / JSON file as it is, in one all-or-nothing import."""
        path = Path(path)
        with path.open("rb") as handle:
            files = {"file": (path.name, handle, "application/octet-stream")}
            data = {"format": format} if format else None
            return self._client.request(
                "POST", f"/projects/{self._project_id}/tasks", files=files, data=data
            ).json()

    def list(self, *, status: str | None = None, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        after: int | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if status:
                params["status"] = status
            if after is not None:
                params["after"] = after
            page = self._client.request("GET", f"/projects/{self._project_id}/tasks", params=params).json()
            yield from page["items"]
            if page["next"] is None:
                return
            after = page["next"]
