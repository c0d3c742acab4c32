"""Generation batches from the SDK: ``project.generate(...)`` queues one, ``.wait()`` follows it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qistas.client.client import Client


class GenerationBatch:
    """A batch of generated candidates. ``refresh()``, ``wait()``; counts as properties."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self.data = data

    def __repr__(self) -> str:
        return (f"GenerationBatch(id={self.id}, status={self.status!r}, generated={self.generated}, "
                f"duplicates={self.duplicates}, failed={self.failed})")

    id = property(lambda self: self.data["id"])
    status = property(lambda self: self.data["status"])
    generated = property(lambda self: self.data["generated"])
    duplicates = property(lambda self: self.data["duplicates"])
    failed = property(lambda self: self.data["failed"])
    failures = property(lambda self: self.data.get("failures", []))

    def refresh(self) -> GenerationBatch:
        self.data = self._client.request("GET", f"/generation-batches/{self.id}").json()
        return self

    def wait(self, *, timeout: float = 3600, poll: float = 1.0,
             on_progress: Callable[[GenerationBatch], None] | None = None) -> GenerationBatch:
        """Poll until the batch is done; ``RuntimeError`` when it failed as a whole."""
        deadline = time.monotonic() + timeout
        while self.refresh().status in ("queued", "running"):
            if on_progress is not None:
                on_progress(self)
            if time.monotonic() > deadline:
                raise TimeoutError(f"generation batch {self.id} is still {self.status}")
            time.sleep(poll)
        if self.status == "failed":
            raise RuntimeError(f"generation batch {self.id} failed: {self.data.get('error')}")
        return self


def generate(client: Client, project_id: int, *, endpoints: list[int], template: dict[str, str], count: int,
             topics: list[str] | None = None, language: str = "", seed: int = 0, temperature: float = 0.7,
             dedup_threshold: float = 0.8) -> GenerationBatch:
    body = {"endpoints": endpoints, "template": template, "count": count, "topics": topics or [],
            "language": language, "seed": seed, "temperature": temperature, "dedup_threshold": dedup_threshold}
    return GenerationBatch(client, client.request("POST", f"/projects/{project_id}/generate", json=body).json())
