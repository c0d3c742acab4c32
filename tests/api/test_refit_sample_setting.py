"""``QISTAS_REFIT_SAMPLE_ANSWERS`` reaches the refit the API runs: a project of a structured
type with more answers than it is fitted on every kth task."""

from __future__ import annotations

import pytest

from qistas.config import Settings
from qistas.db.engine import Database
from qistas.db.models import Project
from qistas.domain import quality
from qistas.domain.tasktypes import parse_spec, type_of
from tests.domain.test_refit_sampled import SPECS, _build
from tests.factories import Tenant


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"refit_interval_seconds": 0, "refit_sample_answers": 1000})


def test_the_setting_bounds_the_refit_the_api_runs(tenant: Tenant, database: Database) -> None:
    pid = tenant.project(task=SPECS["rating"])["id"]
    _, n_answers = _build(database, "rating", pid=pid, n_tasks=400)
    assert 1000 < n_answers <= 2000  # every second task is fitted
    refit = tenant.owner.post(f"/projects/{pid}/quality/refit")
    assert refit.status_code == 200, refit.text
    with database.reader() as session:
        project = session.get_one(Project, pid)
        spec = parse_spec(project.task_spec)
        sample = quality._load_answers(session, project, spec, stride=2)
        fitted = quality.load_model(session, pid)
    assert fitted is not None and list(fitted.rows) == sample.worker_ids
    assert fitted.params == type_of(spec).aggregator(spec).fit(
        sample.items, n_workers=len(sample.worker_ids), contexts=sample.contexts).params_
