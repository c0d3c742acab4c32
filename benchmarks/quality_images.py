"""Aggregation quality of the image types on seeded simulations: polygons and keypoints.

Simulated annotators draw around known objects: careful ones (small noise), sloppy ones (more
noise, missed objects, vertices or keypoints clicked elsewhere) and a spammer (objects drawn at
random). Each task's answers are decided by the type's aggregator, as after each answer (no
worker model), and after a fit on the whole simulated project (the background refit), and
scored against the truth: polygons by mask IoU, keypoints by OKS (COCO's, with the truth's
area), each truth object matched one to one to the result's (an unmatched one scores 0). The
baseline is one annotator picked at random per task, as a project with one answer per task
would get.

    python benchmarks/quality_images.py            # 150 tasks per configuration
    python benchmarks/quality_images.py --quick    # 40 tasks
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from qistas.quality.keypoints import KeypointAggregator, as_instance
from qistas.quality.polygons import PolygonAggregator, polygon_iou

WIDTH, HEIGHT = 640, 480
N_KEYPOINTS = 12
SIGMAS = np.full(N_KEYPOINTS, 0.05)

# (name, vertex or keypoint noise, chance to miss an object, chance of a stray point/vertex shift)
CAREFUL, SLOPPY = ("careful", 1.5, 0.02, 0.0), ("sloppy", 6.0, 0.15, 0.1)


def crowd(n: int) -> list[tuple[str, float, float, float]]:
    """n annotators: mostly careful, one sloppy from three on, one spammer from five on."""
    people = [CAREFUL] * n
    if n >= 3:
        people[1] = SLOPPY
    if n >= 5:
        people[3] = ("spammer", 0.0, 0.0, 0.0)
        people[4] = SLOPPY
    return people


# --- polygons ------------------------------------------------------------------------------


def blob(rng: np.random.Generator) -> np.ndarray:
    """A random star-shaped object: 10–24 vertices at radii around a centre."""
    n = int(rng.integers(10, 25))
    r = rng.uniform(25, 90)
    cx, cy = rng.uniform(r + 5, WIDTH - r - 5), rng.uniform(r + 5, HEIGHT - r - 5)
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = r * rng.uniform(0.6, 1.0, n)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def redraw(truth: np.ndarray, rng: np.random.Generator, noise: float, stray: float) -> np.ndarray:
    """How a person outlines an object: their own vertices along its boundary, each off by noise."""
    closed = np.vstack([truth, truth[:1]])
    lengths = np.hypot(*np.diff(closed, axis=0).T)
    at = np.concatenate([[0], np.cumsum(lengths)])
    m = int(rng.integers(8, 30))
    positions = np.sort(rng.uniform(0, at[-1], m))
    points = np.stack([np.interp(positions, at, closed[:, 0]), np.interp(positions, at, closed[:, 1])], axis=1)
    points += rng.normal(0, noise, points.shape) + rng.normal(0, noise / 2, 2)
    if stray and rng.random() < stray:  # one vertex clicked well off the boundary
        points[rng.integers(m)] += rng.normal(0, 25, 2)
    return np.clip(points, 0, [WIDTH, HEIGHT])


def polygon_task(rng: np.random.Generator, people: list[tuple[str, float, float, float]]
                 ) -> tuple[list[np.ndarray], list[tuple[int, Any]]]:
    truth = [blob(rng) for _ in range(int(rng.integers(1, 4)))]
    answers = []
    for worker, (kind, noise, miss, stray) in enumerate(people):
        drawn = ([blob(rng) for _ in truth] if kind == "spammer"
                 else [redraw(t, rng, noise, stray) for t in truth if rng.random() >= miss])
        answers.append((worker, {"polygons": [{"points": p.round(1).tolist(), "label": "object"} for p in drawn]}))
    return truth, answers


def polygon_score(truth: list[np.ndarray], response: dict[str, Any]) -> float:
    found = [{"points": p["points"], "label": "object"} for p in response["polygons"]]
    return matched_mean([{"points": t.tolist(), "label": "object"} for t in truth], found,
                        lambda a, b: polygon_iou(a, b, resolution=200))


# --- keypoints -----------------------------------------------------------------------------


def skeleton(rng: np.random.Generator) -> np.ndarray:
    """A random object of N_KEYPOINTS keypoints within a 60–220 pixel box, some of them hidden."""
    size = rng.uniform(60, 220)
    x0, y0 = rng.uniform(0, WIDTH - size), rng.uniform(0, HEIGHT - size)
    points = np.zeros((N_KEYPOINTS, 3))
    points[:, 0] = x0 + rng.uniform(0, size, N_KEYPOINTS)
    points[:, 1] = y0 + rng.uniform(0, size, N_KEYPOINTS)
    points[:, 2] = np.where(rng.random(N_KEYPOINTS) < 0.15, 1, 2)
    return points


def place(truth: np.ndarray, rng: np.random.Generator, noise: float, stray: float) -> np.ndarray:
    """How a person places an object's keypoints: each off by noise (relative to the object's
    size), now and then one on another part (a left/right mix-up), a hidden one sometimes left out."""
    scale = math.sqrt(as_instance(truth).area) / 100
    points = truth.copy()
    points[:, :2] += rng.normal(0, noise * scale, (N_KEYPOINTS, 2))
    if stray and rng.random() < stray * 3:
        i, j = rng.choice(N_KEYPOINTS, 2, replace=False)
        points[[i, j], :2] = points[[j, i], :2]
    left_out = (truth[:, 2] == 1) & (rng.random(N_KEYPOINTS) < 0.3)
    points[left_out] = 0
    points[:, :2] = np.clip(points[:, :2], 0, [WIDTH, HEIGHT])
    return points


def keypoint_task(rng: np.random.Generator, people: list[tuple[str, float, float, float]]
                  ) -> tuple[list[np.ndarray], list[tuple[int, Any]]]:
    truth = [skeleton(rng) for _ in range(int(rng.integers(1, 4)))]
    answers = []
    for worker, (kind, noise, miss, stray) in enumerate(people):
        drawn = ([skeleton(rng) for _ in truth] if kind == "spammer"
                 else [place(t, rng, noise, stray) for t in truth if rng.random() >= miss])
        answers.append((worker, {"instances": [{"keypoints": [[round(x, 1), round(y, 1), int(v)] if v else [0, 0, 0]
                                                              for x, y, v in p.tolist()]} for p in drawn]}))
    return truth, answers


def coco_oks(truth: np.ndarray, found: Any) -> float:
    """COCO's OKS: over the truth's labelled keypoints, scaled by the truth's area."""
    got = as_instance(found).points
    labelled = truth[:, 2] > 0
    d2 = np.sum((truth[:, :2] - got[:, :2]) ** 2, axis=1)
    terms = np.exp(-d2 / (2 * as_instance(truth).area * (2 * SIGMAS) ** 2)) * (got[:, 2] > 0)
    return float(terms[labelled].mean())


def keypoint_score(truth: list[np.ndarray], response: dict[str, Any]) -> float:
    return matched_mean(truth, [i["keypoints"] for i in response["instances"]], coco_oks)


# --- shared ----------------------------------------------------------------------------------


def matched_mean(truth: list[Any], found: list[Any], similarity: Callable[[Any, Any], float]) -> float:
    """Mean similarity of each truth object with the result's object matched to it (Hungarian,
    most total similarity); unmatched truth objects score 0."""
    if not found:
        return 0.0
    sim = np.array([[similarity(t, f) for f in found] for t in truth])
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return float(sim[rows, cols].sum() / len(truth))


def run(kind: str, n_tasks: int, n_people: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    people = crowd(n_people)
    make, score = (polygon_task, polygon_score) if kind == "polygons" else (keypoint_task, keypoint_score)
    tasks = [make(rng, people) for _ in range(n_tasks)]
    model = PolygonAggregator(["object"]) if kind == "polygons" else KeypointAggregator(N_KEYPOINTS, sigmas=SIGMAS)
    single, online, fitted, seconds = [], [], [], []
    for truth, answers in tasks:
        _, picked = answers[int(rng.integers(len(answers)))]
        single.append(score(truth, picked))
        started = time.perf_counter()
        online.append(score(truth, model.aggregate(answers).response))
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    model.fit([answers for _, answers in tasks], n_workers=n_people)
    fit_seconds = time.perf_counter() - started
    fitted = [score(truth, result.response) for (truth, _), result in zip(tasks, model.results_, strict=True)]
    return {"kind": kind, "people": n_people, "tasks": n_tasks, "single": float(np.mean(single)),
            "online": float(np.mean(online)), "fitted": float(np.mean(fitted)),
            "ms_per_task": 1000 * float(np.median(seconds)), "fit_s": fit_seconds,
            "quality": [round(q, 2) for q in model.quality_]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="40 tasks per configuration")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    n_tasks = 40 if args.quick else 150
    print(f"{'type':<10} {'people':>6} {'tasks':>5} {'one annotator':>14} {'aggregate':>10} {'after fit':>10} "
          f"{'ms/task':>8} {'fit s':>6}  learned quality")
    for kind in ("polygons", "keypoints"):
        for n_people in (3, 5):
            r = run(kind, n_tasks, n_people, args.seed + n_people)
            print(f"{kind:<10} {n_people:>6} {n_tasks:>5} {r['single']:>14.3f} {r['online']:>10.3f} "
                  f"{r['fitted']:>10.3f} {r['ms_per_task']:>8.1f} {r['fit_s']:>6.1f}  {r['quality']}")
    print("polygons: mean mask IoU per true object; keypoints: mean COCO OKS per true object (unmatched: 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
