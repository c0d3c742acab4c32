"""What a refit fitted on a sample costs in quality, on the real crowd sets.

A structured type's project with more than ``REFIT_SAMPLE_ANSWERS`` answers is fitted on
every kth task, then every task is decided with that worker model as the online path decides
one (``domain.quality``). Here, per set of ``../shared/datasets/crowd-types/`` and per k: the
type's aggregator fitted on tasks 0, k, 2k, ... (the whole set at k = 1), every task decided by
``aggregate`` with the fitted model loaded, the results scored against the set's truth with
the metrics of ``benchmarks/quality_types.py``. Also printed: the answers in the fit, and the
workers the fit never saw (who get the prior).

    python benchmarks/refit_sample.py [--strides 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from quality_types import DATA, REAL_SPECS, REFERENCES, read_jsonl, real_data, score_real  # noqa: E402

from qistas.domain.tasktypes import parse_spec, type_of  # noqa: E402


def run(name: str, strides: list[int]) -> None:
    folder = DATA / name
    items, answers = read_jsonl(folder / "items.jsonl"), read_jsonl(folder / "answers.jsonl")
    truth = {t["item"]: t["answer"] for t in read_jsonl(folder / "truth.jsonl")}
    spec = parse_spec(REAL_SPECS[name])
    task_type = type_of(spec)
    order = [i["item"] for i in items]
    to_data = real_data(name)
    data = {i["item"]: to_data(i["data"]) for i in items}
    by_item: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for a in answers:
        by_item[a["item"]].append((a["worker"], a["answer"]))
    contexts = {k: task_type.context(spec, data[k], None) for k in order}
    for stride in strides:
        began = time.process_time()
        sample = [k for n, k in enumerate(order) if n % stride == 0 and by_item[k]]
        seen = sorted({w for k in sample for w, _ in by_item[k]})
        index = {w: j for j, w in enumerate(seen)}
        fitted = task_type.aggregator(spec).fit([[(index[w], a) for w, a in by_item[k]] for k in sample],
                                               n_workers=len(seen), contexts=[contexts[k] for k in sample])
        decider = task_type.aggregator(spec).load_params(fitted.params_)
        results = {k: decider.aggregate([(index.get(w, -1), a) for w, a in by_item[k]], contexts[k]).response
                   for k in order if by_item[k]}
        value, _also = score_real(name, results, truth)
        workers = {w for k in order for w, _ in by_item[k]}
        print(f"{name:22} k={stride:<3} fit on {sum(len(by_item[k]) for k in sample):>6,} of {len(answers):>6,} "
              f"answers, {len(workers - set(seen)):>3} of {len(workers):>3} workers unseen   "
              f"{REFERENCES[name][0]} {value:.3f}   {time.process_time() - began:5.1f} s CPU", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strides", default="1,2,4,8,16", help="comma-separated k: fit every kth task")
    parser.add_argument("--sets", default=",".join(REAL_SPECS), help="comma-separated sets")
    args, _unknown = parser.parse_known_args()  # make bench passes its own arguments to every script
    strides = [int(k) for k in args.strides.split(",")]
    for name in args.sets.split(","):
        run(name, strides)


if __name__ == "__main__":
    main()
