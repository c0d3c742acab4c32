"""The review stage from the SDK: reviewers take and judge tasks, annotators read what was sent
back, the customer audits delivered tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qistas.client.models import Rejection, Review, ReviewLease, parse

if TYPE_CHECKING:
    from qistas.client.client import Client


class Reviews:
    def __init__(self, client: Client) -> None:
        self._client = client

    def take(self, project_id: int) -> ReviewLease | None:
        """The next task waiting for review (or the one you hold); None when none waits for you."""
        # Taking again while holding a lease hands the same lease back: a retry is safe.
        response = self._client.request("POST", f"/projects/{project_id}/reviews", retry=True)
        return None if response.status_code == 204 else parse(ReviewLease, response.json())

    def accept(self, review_id: int) -> Review:
        """The aggregated answer is delivered."""
        return self._submit(review_id, {"action": "accept"})

    def correct(self, review_id: int, answer: Any) -> Review:
        """Your answer (validated by the task type) is delivered instead."""
        return self._submit(review_id, {"action": "correct", "answer": answer})

    def reject(self, review_id: int, reason: str, *, annotation: int | None = None) -> Review:
        """Send one answer back with a reason its annotator reads; the task gets one more
        annotation. ``annotation`` (an ``id`` of the lease's ``answers``) may be left out when
        the task has one answer."""
        body: dict[str, Any] = {"action": "reject", "reason": reason}
        if annotation is not None:
            body["annotation"] = annotation
        return self._submit(review_id, body)

    def renew(self, review_id: int) -> Review:
        """Keep the review lease while still at it; a lease that ran out raises ``Conflict``."""
        return parse(Review, self._client.request("POST", f"/reviews/{review_id}/renew", retry=True).json())

    def _submit(self, review_id: int, body: dict[str, Any]) -> Review:
        # A repeat returns the review stored the first time: a retry is safe.
        return parse(Review, self._client.request("POST", f"/reviews/{review_id}", json=body, retry=True).json())

    def audit(self, task_id: int, *, accepted: bool, reason: str | None = None) -> dict[str, Any]:
        """The customer's verdict on a delivered task; a rejection (``reason`` required) reopens
        it. Returns the task. Not retried: a repeat answers that the task was already audited."""
        body: dict[str, Any] = {"accepted": accepted}
        if reason is not None:
            body["reason"] = reason
        answer: dict[str, Any] = self._client.request("POST", f"/tasks/{task_id}/audit", json=body).json()
        return answer

    def rejections(self, project_id: int, *, limit: int | None = None) -> list[Rejection]:
        """Your own answers in the project that were sent back, newest first, with the reason."""
        params = {"limit": limit} if limit is not None else None
        rows = self._client.request("GET", f"/projects/{project_id}/rejections", params=params).json()
        return [parse(Rejection, r) for r in rows]
