"""Storage quotas per organization: the task data it stores and its export files.

Usage is counted from the rows when asked (a sum over the organization's tasks or finished
export jobs), so nothing extra is written on the import and export paths. A quota is
checked before the work that would pass it; two imports checked at the same moment may
together pass it by at most the second one's size.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qistas.db.dialect import json_bytes
from qistas.db.models import ExportJob, Project, Task
from qistas.errors import QuotaExceeded

TASK_QUOTA = "QISTAS_MAX_TASK_BYTES_PER_ORG"
EXPORT_QUOTA = "QISTAS_MAX_EXPORT_BYTES_PER_ORG"


def task_bytes(session: Session, *, org_id: int) -> int:
    """Bytes of task data the organization stores (the JSON text of every task's ``data``)."""
    query = (select(func.coalesce(func.sum(json_bytes(session, Task.data)), 0))
             .join(Project, Project.id == Task.project_id).where(Project.org_id == org_id))
    return int(session.scalar(query) or 0)


def export_bytes(session: Session, *, org_id: int) -> int:
    """Bytes of the organization's export files kept on the server (finished jobs not yet expired)."""
    query = (select(func.coalesce(func.sum(ExportJob.size_bytes), 0))
             .join(Project, Project.id == ExportJob.project_id)
             .where(Project.org_id == org_id, ExportJob.status == "done"))
    return int(session.scalar(query) or 0)


def ensure_task_room(session: Session, *, org_id: int, adding: int, limit: int) -> None:
    """Refuse task data that would take the organization past ``limit`` bytes (0: no quota).

    ``adding`` 0 asks whether there is any room left at all (before an upload is received).
    """
    if limit <= 0:
        return
    used = task_bytes(session, org_id=org_id)
    if used + adding > limit or used >= limit:
        raise QuotaExceeded(
            f"the organization's task data would pass its quota of {limit} bytes ({used} stored, "
            f"{adding} more sent); nothing was imported",
            details={"quota": TASK_QUOTA, "limit": limit, "used": used, "adding": adding})


def ensure_export_room(session: Session, *, org_id: int, limit: int) -> None:
    """Refuse a new export job while the organization's kept export files reach ``limit`` bytes."""
    if limit <= 0:
        return
    used = export_bytes(session, org_id=org_id)
    if used >= limit:
        raise QuotaExceeded(
            f"the organization's export files reach their quota of {limit} bytes ({used} kept); "
            "they are deleted as they expire, or stream the export instead (GET .../export)",
            details={"quota": EXPORT_QUOTA, "limit": limit, "used": used})
