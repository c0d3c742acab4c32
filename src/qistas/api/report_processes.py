"""The server's report processes (``qistas.report_process``): a pool started at the first
report or refit of a large project and kept until the server stops (``api.helper_processes``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from qistas import report_process
from qistas.api.helper_processes import HelperProcesses
from qistas.api.recorded_reads import Read, record_read
from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Project, User
from qistas.db.unit_of_work import read
from qistas.domain import quality
from qistas.domain.quality import RefitResult
from qistas.policies import ensure_customer_access


class ReportProcesses(HelperProcesses):
    """``QISTAS_REPORT_PROCESSES`` processes, for projects of ``QISTAS_REPORT_PROCESS_MIN_ANSWERS``
    answers or more."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, size=settings.report_processes, prepare=report_process.prepare,
                         nice=report_process.NICE, lost="the report stopped before it was done, as its process "
                                                        "ended: ask for it again")

    def takes(self, answers: int) -> bool:
        """Whether the report of a project of ``answers`` answers is read by a report process."""
        return self.open and answers >= self.settings.report_process_min_answers

    async def read(self, db: Database, job: report_process.ProjectReport, *, org_id: int, answers: int) -> Any:
        """``job``'s report: by a report process for a large project, in ``org_id``'s turn, else
        in a thread here."""
        return await self._either(db, job, org_id, answers, report_process.run,
                                  partial(read, db, partial(report_process.read_report, job=job)))

    async def refit(self, db: Database, job: report_process.Refit, *, org_id: int,
                    answers: int) -> RefitResult | None:
        """``job``'s refit: by a report process for a large project, in ``org_id``'s turn, else
        in a thread here."""
        found: RefitResult | None = await self._either(db, job, org_id, answers, report_process.refit,
                                                       partial(report_process.refit_on, db, job))
        return found

    async def _either(self, db: Database, job: Any, org_id: int, answers: int, in_process: Callable[[Any], Any],
                      here: Callable[[], Any]) -> Any:
        """``in_process(job)`` in a report process, given the database's URL, for a project of
        ``answers`` answers it takes; else ``here()`` in a thread."""
        if self.takes(answers):
            return await self.run(in_process, replace(job, database_url=db.engine.url.render_as_string(
                hide_password=False)), org_id=org_id)
        return await run_in_threadpool(here)


async def project_of(db: Database, actor: User, project_id: int) -> tuple[int, int]:
    """The project's organization and answers given, once ``actor`` is found to have access."""

    def readable(session: Session) -> tuple[int, int]:
        project = ensure_customer_access(actor, session.get(Project, project_id))
        return project.org_id, quality.answers_given(session, project_id=project.id)

    found: tuple[int, int] = await run_in_threadpool(read, db, readable)
    return found


async def read_project_report(request: Request, db: Database, actor: User, job: report_process.ProjectReport,
                              action: str) -> Any:
    """``job``'s report for ``actor``: the project's access checked, the report read (by a
    report process for a large project), then its reading recorded as ``action``."""
    org_id, answers = await project_of(db, actor, job.project_id)
    processes: ReportProcesses = request.app.state.report_processes
    found = await processes.read(db, job, org_id=org_id, answers=answers)
    await run_in_threadpool(record_read, db, actor, Read(action, "project", job.project_id, org_id))
    return found
