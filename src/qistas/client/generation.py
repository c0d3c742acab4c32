"""Generation batches from the SDK: ``project.generate(...)`` queues one, ``.wait()`` follows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qistas.client.jobs import ServerJob

if TYPE_CHECKING:
    from qistas.client.client import Client


class GenerationBatch(ServerJob):
    """A batch of generated candidates. ``refresh()``, ``wait()``; counts as properties."""

    PATH = "/generation-batches"
    NOUN = "generation batch"

    def __repr__(self) -> str:
        return (f"GenerationBatch(id={self.id}, status={self.status!r}, generated={self.generated}, "
                f"duplicates={self.duplicates}, failed={self.failed})")

    generated = property(lambda self: self.data["generated"])
    duplicates = property(lambda self: self.data["duplicates"])
    failed = property(lambda self: self.data["failed"])
    failures = property(lambda self: self.data.get("failures", []))


def generate(client: Client, project_id: int, *, endpoints: list[int], template: dict[str, str], count: int,
             topics: list[str] | None = None, language: str = "", seed: int = 0, temperature: float = 0.7,
             dedup_threshold: float = 0.8) -> GenerationBatch:
    body = {"endpoints": endpoints, "template": template, "count": count, "topics": topics or [],
            "language": language, "seed": seed, "temperature": temperature, "dedup_threshold": dedup_threshold}
    return GenerationBatch(client, client.request("POST", f"/projects/{project_id}/generate", json=body).json())
