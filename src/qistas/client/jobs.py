"""What the SDK's server-side jobs share (export jobs, generation batches, pre-label jobs): the
answer the server last gave, ``refresh()`` and ``wait()``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from qistas.client.client import Client


class ServerJob:
    """A job the server runs in the background. Subclasses name their ``PATH`` (``/exports``)
    and ``NOUN`` (``export``), for ``refresh()`` and for the errors ``wait()`` raises."""

    PATH = ""
    NOUN = ""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self.data = data

    id = property(lambda self: self.data["id"])
    status = property(lambda self: self.data["status"])
    error = property(lambda self: self.data.get("error"))

    def refresh(self) -> Self:
        self.data = self._client.request("GET", f"{self.PATH}/{self.id}").json()
        return self

    def wait(self, *, timeout: float = 3600, poll: float = 1.0,
             on_progress: Callable[[Self], None] | None = None) -> Self:
        """Poll while it is queued or running (``on_progress`` is called each time); a
        ``TimeoutError`` after ``timeout`` seconds, a ``RuntimeError`` when it failed as a whole."""
        deadline = time.monotonic() + timeout
        while self.refresh().status in ("queued", "running"):
            if on_progress is not None:
                on_progress(self)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.NOUN} {self.id} is still {self.status}")
            time.sleep(poll)
        if self.status == "failed":
            raise RuntimeError(f"{self.NOUN} {self.id} failed: {self.error}")
        return self
