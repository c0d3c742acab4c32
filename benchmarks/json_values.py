"""What one stored value costs an export: JSON decoded, a record encoded, a timestamp formatted.

Each step timed per value, the standard library against what exports use now
(``qistas/jsontext.py``, ``db/rawrows.py``), on the values ``benchmarks/export.py`` stores: an
answer (``{"label": ...}``), a task's data with an Arabic text, one export record of a task with
four answers, a naive UTC timestamp as psycopg hands it over.

    python benchmarks/json_values.py [--repeat 200000]
"""

from __future__ import annotations

import argparse
import json
import timeit
from datetime import UTC, datetime
from typing import Any

from qistas import jsontext
from qistas.db.rawrows import _iso_datetime  # what raw reads of PostgreSQL timestamps call

ANSWER = json.dumps({"label": "negative"})  # stored text: json.dumps, as SQLAlchemy writes it
DATA = json.dumps({"text": "الخدمة ممتازة لكن التوصيل بطيء، review number 17"})
WHEN = datetime(2026, 1, 1, 0, 0, 17, 250)
RECORD: dict[str, Any] = {
    "task_id": 17, "unique_id": "row-17", "batch": None, "status": "completed", "data": json.loads(DATA),
    "metadata": {"source": "bench"}, "response": {"label": "negative"}, "confidence": 0.75,
    "method": "majority_vote", "needs_review": False, "details": None, "completed_at": "2026-01-01T00:00:17+00:00",
    "review": {"status": None, "audit": None},
    "provenance": {"annotators": 4, "models": 0, "agreement": 0.75, "confidence": 0.75, "method": "majority_vote",
                   "needs_review": False},
    "predictions": None,
    "annotations": [{"annotator": f"annotator-{n:08x}", "source": "human", "answer": {"label": "negative"},
                     "seconds": 4.5, "created_at": "2026-01-01T00:00:17+00:00"} for n in range(4)],
}


def per_value_us(work: Any, repeat: int) -> float:
    return min(timeit.repeat(work, number=repeat, repeat=3)) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200_000, help="values per timing (best of three)")
    args, _unknown = parser.parse_known_args()  # make bench passes its own arguments to every script
    standard_encoder = json.JSONEncoder(ensure_ascii=False)
    rows = [
        ("decode a stored answer", lambda: json.loads(ANSWER), lambda: jsontext.loads(ANSWER)),
        ("decode a task's data (Arabic text)", lambda: json.loads(DATA), lambda: jsontext.loads(DATA)),
        ("encode an export record (4 answers)", lambda: standard_encoder.encode(RECORD).encode(),
         lambda: jsontext.encode(RECORD)),
        ("format a naive UTC timestamp", lambda: WHEN.replace(tzinfo=UTC).isoformat(), lambda: _iso_datetime(WHEN)),
    ]
    print("| step | standard library µs | now µs |")
    print("|---|---:|---:|")
    for name, before, now in rows:
        print(f"| {name} | {per_value_us(before, args.repeat):.2f} | {per_value_us(now, args.repeat):.2f} |")


if __name__ == "__main__":
    main()
