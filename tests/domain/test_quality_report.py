"""The project quality report's category section against its definition, answer by answer."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select

from qistas.db.engine import Database
from qistas.db.enums import TaskStatus
from qistas.db.models import Annotation, Project, Task
from qistas.domain import quality_report
from qistas.quality import fleiss_kappa
from tests.domain.test_fraud import LABELS, _setup, _work


def test_the_category_section_counts_every_kept_answer_as_the_definition_does(database: Database) -> None:
    """Kappa, answers per label and the confusion of consensus against answer, read raw and
    coded once per distinct text, are what reading each answer and response as a value gives:
    with a rejected answer (not counted), answers equal but for their text's spacing and keys'
    order, and an answer outside the labels."""
    project_id, people, _ = _setup(database, n_tasks=40, n_gold=5, honest=4)
    _work(database, project_id, people, clicker=people[-1])
    with database.writer.begin() as session:
        mine = session.scalars(select(Annotation).where(Annotation.project_id == project_id)
                               .order_by(Annotation.id)).all()
        mine[1].rejected_at = mine[1].created_at
        mine[2].answer = {"note": "x", "label": LABELS[1]}
        mine[4].answer = {"label": LABELS[1], "note": "x"}
        mine[6].answer = {"label": "not a label"}
    with database.reader() as session:
        project = session.get(Project, project_id)
        assert project is not None
        report = quality_report.project_quality(session, project=project, pseudonym=str)
        answers = session.execute(select(Annotation.task_id, Annotation.answer)
                                  .where(Annotation.project_id == project_id, Annotation.rejected_at.is_(None))).all()
        responses: dict[int, Any] = dict(session.execute(
            select(Task.id, Task.response).where(Task.project_id == project_id,
                                                 Task.status == TaskStatus.COMPLETED)).all())
    index = {label: i for i, label in enumerate(LABELS)}
    per_task: dict[int, np.ndarray] = {}
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    for task_id, answer in answers:
        given = index.get(answer.get("label"))
        if given is None:
            continue
        per_task.setdefault(task_id, np.zeros(len(LABELS), dtype=np.int64))[given] += 1
        response = responses.get(task_id)
        if response is not None and response.get("label") in index:
            confusion[index[response["label"]], given] += 1
    table = np.array([per_task[t] for t in sorted(per_task)])
    assert report["confusion"]["matrix"] == confusion.tolist()
    assert [item["answers"] for item in report["labels"]] == table.sum(axis=0).tolist()
    assert report["fleiss_kappa"] == round(float(fleiss_kappa(table)), 4)
    assert confusion.sum() > 0 and sum(item["answers"] for item in report["labels"]) == len(answers) - 1
