"""The report process: a large project's quality report and fraud signals, read beside the
server, and its worker model refitted there on request.

Each reads every answer of its project and works on them in Python and numpy: 1.5–3 s for
400,000 answers (``benchmarks/reports.py``). In a thread of the server it held the interpreter
lock for most of that time, and every request of the same process waited for the lock in turn:
another tenant's 32 annotators fell to 39% of their answers per second, their p99 from 267 ms
to 1.5 s, while two clients read the reports of a 50,000-task project
(``benchmarks/fairness.py --scenarios reports``, SQLite). Here the report is read by a process
of its own at a lower CPU priority (nice 10, ``NICE``), which the operating system schedules
beside the server's, so the server's interpreter only waits for the answer.

``api.report_processes`` keeps a pool of these processes (``QISTAS_REPORT_PROCESSES``), started
with ``spawn`` (``helper_process``), for a project of ``QISTAS_REPORT_PROCESS_MIN_ANSWERS``
answers or more; a smaller project's report, a fraction of a second, is read in the server's
threads by the same function (``read_report``). The server checks the reader's access before
and records the reading in the audit log after; the process only reads, in one read
transaction, and returns plain values. It holds no lock anyone waits on.

A refit on request (``POST /projects/{id}/quality/refit``, ``Refit``) reads every answer too,
fits for seconds to minutes (47–69 s for a million answers) and writes the re-scored tasks a
chunk per transaction under the project's refit lease (``quality.refit``): the same function in
the same process pool, so that it does not hold the server's interpreter while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from qistas.db.engine import Database
    from qistas.domain.quality import RefitResult

PROCESS_NAME = "qistas-report"  # its name in ps and /proc/<pid>/comm
NICE = 10


@dataclass(frozen=True)
class ProjectReport:
    """One report of a project whose access the server has checked."""

    kind: Literal["quality", "fraud"]
    project_id: int
    secret_key: str  # the server's, for the annotators' pseudonyms
    min_seconds: float | None = None  # fraud: the speed floor asked for
    database_url: str = ""  # set for a report process


@dataclass(frozen=True)
class Refit:
    """A refit of a project's worker model asked for by a user whose access the server has checked."""

    project_id: int
    lease_seconds: float
    sample_answers: int
    database_url: str = ""  # set for a report process


def prepare(nice: int = NICE, log_format: str = "text", log_level: str = "warning") -> None:
    """Each process's start (``helper_process.prepare``), the reports' modules imported."""
    from qistas import helper_process

    helper_process.prepare(PROCESS_NAME, nice, log_format, log_level, modules=(
        "qistas.db.models", "qistas.domain.fraud", "qistas.domain.quality", "qistas.domain.quality_report",
        "qistas.domain.reviews"))


def read_report(session: Session, job: ProjectReport) -> Any:
    """The report as the route returns it before naming: the quality report (a dict, its
    review section included), or the fraud signals and the speed floor they used."""
    from qistas.db.models import Project
    from qistas.domain import fraud, quality_report, reviews
    from qistas.domain.security import pseudonyms
    from qistas.errors import NotFound

    project = session.get(Project, job.project_id)
    if project is None:  # deleted since the server checked
        raise NotFound("project not found")
    if job.kind == "fraud":
        found, detector = fraud.detect(session, projects=[project], min_seconds=job.min_seconds)
        return found, fraud.floor_of(detector)
    name = pseudonyms(job.secret_key, project.id)
    report = quality_report.project_quality(session, project=project, pseudonym=name)
    report["review"] = reviews.report(session, project=project, name=name)
    return report


def run(job: ProjectReport) -> Any:
    """In a report process: ``read_report`` in a read transaction of its own."""
    from functools import partial

    from qistas import helper_process
    from qistas.db.unit_of_work import read

    return read(helper_process.database(job.database_url), partial(read_report, job=job))


def refit_on(db: Database, job: Refit) -> RefitResult | None:
    """``quality.refit`` of the job's project (``RefitRunning`` while another process refits it)."""
    from qistas.domain import quality

    return quality.refit(db, project_id=job.project_id, lease_seconds=job.lease_seconds,
                         sample_answers=job.sample_answers)


def refit(job: Refit) -> RefitResult | None:
    """In a report process: ``refit_on`` its database."""
    from qistas import helper_process

    return refit_on(helper_process.database(job.database_url), job)
