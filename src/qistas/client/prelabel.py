"""Models in the loop from the SDK: ``client.model_endpoints`` registers an organization's
endpoints; ``project.prelabel(...)`` queues a pre-label job and ``.wait()`` follows it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qistas.client.jobs import ServerJob
from qistas.client.models import ModelEndpoint, PrelabelFailure, parse

if TYPE_CHECKING:
    from qistas.client.client import Client

AS = ("predictions", "annotations")


class ModelEndpoints:
    """Owners of the organization and admins: ``create``, ``list``, ``get``, ``delete``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, *, name: str, base_url: str, model: str, api_key: str | None = None,
               max_concurrency: int = 4, requests_per_minute: int | None = None, timeout_seconds: float = 60.0,
               price_input_per_1k: float | None = None, price_output_per_1k: float | None = None,
               allow_private: bool = False, org: str | None = None) -> ModelEndpoint:
        """Register an endpoint; ``api_key`` is stored sealed and never returned.
        ``allow_private`` is for admins, who name the organization (``org``, its slug)."""
        body: dict[str, Any] = {"name": name, "base_url": base_url, "model": model,
                                "max_concurrency": max_concurrency, "timeout_seconds": timeout_seconds,
                                "allow_private": allow_private}
        optional = {"api_key": api_key, "requests_per_minute": requests_per_minute,
                    "price_input_per_1k": price_input_per_1k, "price_output_per_1k": price_output_per_1k, "org": org}
        body.update({k: v for k, v in optional.items() if v is not None})
        return parse(ModelEndpoint, self._client.request("POST", "/model-endpoints", json=body).json())

    def list(self) -> list[ModelEndpoint]:
        return [parse(ModelEndpoint, e) for e in self._client.request("GET", "/model-endpoints").json()]

    def get(self, endpoint_id: int) -> ModelEndpoint:
        return parse(ModelEndpoint, self._client.request("GET", f"/model-endpoints/{endpoint_id}").json())

    def delete(self, endpoint_id: int) -> None:
        """Remove it and forget its key; its jobs stay readable, unfinished ones stop."""
        self._client.request("DELETE", f"/model-endpoints/{endpoint_id}")


class PrelabelJob(ServerJob):
    """A pre-label job. ``refresh()``, ``wait()`` (a standing one: until its pass is over and it
    waits for new tasks), ``stop()``; its counts as properties. A task that failed does not fail
    the job: see ``failed`` and ``failures``."""

    PATH = "/prelabel-jobs"
    NOUN = "pre-label job"

    def __repr__(self) -> str:
        return (f"PrelabelJob(id={self.id}, as_={self.as_!r}, status={self.status!r}, done={self.done}, "
                f"failed={self.failed}, skipped={self.skipped})")

    as_ = property(lambda self: self.data["as"])
    model = property(lambda self: self.data["model"])
    tasks_total = property(lambda self: self.data.get("tasks_total"))
    done = property(lambda self: self.data["done"])
    failed = property(lambda self: self.data["failed"])
    skipped = property(lambda self: self.data["skipped"])
    cost = property(lambda self: self.data["cost"])
    standing = property(lambda self: self.data.get("standing", False))

    @property
    def failures(self) -> list[PrelabelFailure]:
        """The first failures, each with its task and reason."""
        return [parse(PrelabelFailure, f) for f in self.data.get("failures", [])]

    def stop(self) -> PrelabelJob:
        """Stop it (a standing job above all): it answers no more tasks; what it answered stays."""
        self.data = self._client.request("POST", f"{self.PATH}/{self.id}/stop", retry=True).json()
        return self


def prelabel(client: Client, project_id: int, *, endpoint: int, template: dict[str, str], as_: str = "predictions",
             only_pending: bool = True, standing: bool = False) -> PrelabelJob:
    if as_ not in AS:
        raise ValueError(f"as_ must be one of {', '.join(AS)}")
    body = {"endpoint": endpoint, "template": template, "only_pending": only_pending, "as": as_, "standing": standing}
    return PrelabelJob(client, client.request("POST", f"/projects/{project_id}/prelabel", json=body).json())
