"""A signed media URL's statement: the file, through the lease it was handed out with. Each
image of an image task is fetched with its lease, a request of the annotation loop's pace."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from qistas.db.models import Assignment, Media, Project, Review, table
from qistas.db.prepared import Prepared

_media = table(Media).c
_projects = table(Project).c


class LeasedFile(NamedTuple):
    status: str
    expires_at: datetime | None
    sha256: str | None  # None: the lease's organization has no such file
    content_type: str | None


def _through(lease: Any) -> Prepared[LeasedFile]:
    leases = table(lease).c
    return Prepared(
        select(leases.status, leases.expires_at, _media.sha256, _media.content_type)
        .select_from(table(lease).join(table(Project), _projects.id == leases.project_id)
                     .outerjoin(table(Media), (_media.org_id == _projects.org_id)
                                & (_media.sha256 == bindparam("sha256"))))
        .where(leases.id == bindparam("lease_id")),
        LeasedFile,
    )


# By the kind of lease a signed URL names: "a" an assignment, "r" a review.
THROUGH_LEASE = {"a": _through(Assignment), "r": _through(Review)}
