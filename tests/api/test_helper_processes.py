"""The helper processes' turns (``api.helper_processes``): the jobs one organization has
queued never stand before another organization's; a job canceled while it waits leaves the
line, and one refused as the server stops holds no process. Real processes, one of them, and
jobs that sleep as long as they are told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from qistas.api.helper_processes import HelperProcesses
from qistas.config import Settings
from qistas.errors import Unavailable


def _prepare(nice: int, log_format: str, log_level: str) -> None:
    """A process's start: nothing to load."""


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _run(test: Callable[[HelperProcesses], Awaitable[None]], *, size: int = 1) -> None:
    processes = HelperProcesses(Settings(), size=size, prepare=_prepare, nice=0, lost="lost")
    try:
        asyncio.run(test(processes))
    finally:
        processes.close()


async def _queued(processes: HelperProcesses, jobs: list[tuple[str, int, float]],
                  done: list[str]) -> dict[str, asyncio.Task[float]]:
    """Each job (name, organization, seconds) sent in this order, one event-loop turn apart,
    its name added to ``done`` when it ends; the processes started first (a job of organization
    0), so that none of them waits for a process's start."""
    await asyncio.gather(*(processes.run(_sleep, 0, org_id=0) for _ in range(processes.size)))

    async def one(name: str, org_id: int, seconds: float) -> float:
        found = await processes.run(_sleep, seconds, org_id=org_id)
        done.append(name)
        return found

    tasks = {}
    for name, org_id, seconds in jobs:
        tasks[name] = asyncio.create_task(one(name, org_id, seconds))
        await asyncio.sleep(0.02)  # it has asked for its turn before the next one does
    return tasks


def test_an_organization_with_jobs_queued_does_not_stand_before_another() -> None:
    async def test(processes: HelperProcesses) -> None:
        done: list[str] = []
        tasks = await _queued(processes, [("a1", 1, 0.4), ("a2", 1, 0.05), ("a3", 1, 0.05), ("a4", 1, 0.05),
                                          ("b1", 2, 0.05), ("b2", 2, 0.05), ("c1", 3, 0.05)], done)
        await asyncio.wait_for(asyncio.gather(*tasks.values()), 30)
        # First come, first served would give a1 a2 a3 a4 b1 b2 c1: organization 2 behind all
        # of 1's jobs, 3 behind both. In turns, the process goes to the organization served
        # longest ago: b1 and c1 wait for the job running when they came, no more.
        assert done == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]

    _run(test)


def test_a_free_process_goes_to_the_organization_with_fewer_jobs_in_the_processes() -> None:
    async def test(processes: HelperProcesses) -> None:
        done: list[str] = []
        tasks = await _queued(processes, [("b1", 2, 1.0), ("a1", 1, 0.3), ("b2", 2, 0.05), ("a2", 1, 0.05)], done)
        await asyncio.wait_for(asyncio.gather(*tasks.values()), 30)
        # When a1 ends, b1 still holds the other process: a2 goes before b2, though b2 came
        # first and organization 2 was given a process before organization 1 was.
        assert done.index("a2") < done.index("b2")

    _run(test, size=2)


def test_a_job_canceled_while_it_waits_leaves_the_line() -> None:
    async def test(processes: HelperProcesses) -> None:
        done: list[str] = []
        tasks = await _queued(processes, [("a1", 1, 0.3), ("a2", 1, 5), ("b1", 2, 0.05)], done)
        tasks["a2"].cancel()
        await asyncio.wait_for(tasks["b1"], 30)
        assert done == ["a1", "b1"]
        with pytest.raises(asyncio.CancelledError):
            await tasks["a2"]
        # The process is free again: a job takes it at once.
        assert await asyncio.wait_for(processes.run(_sleep, 0.01, org_id=3), 10) == 0.01

    _run(test)


def test_a_job_whose_turn_comes_as_it_is_canceled_hands_the_process_on() -> None:
    async def test(processes: HelperProcesses) -> None:
        done: list[str] = []
        tasks = await _queued(processes, [("a1", 1, 0.2), ("a2", 1, 5), ("b1", 2, 0.05)], done)
        time.sleep(0.6)  # the event loop held while a1 ends and the process is given to a2
        tasks["a2"].cancel()  # before a2 knows its turn has come
        started = time.monotonic()
        await asyncio.wait_for(tasks["b1"], 30)
        assert done == ["a1", "b1"]
        assert time.monotonic() - started < 4, "a2's job ran"
        with pytest.raises(asyncio.CancelledError):
            await tasks["a2"]

    _run(test)


def test_the_jobs_waiting_as_the_server_stops_are_refused() -> None:
    async def test(processes: HelperProcesses) -> None:
        done: list[str] = []
        tasks = await _queued(processes, [("a1", 1, 0.3), ("a2", 1, 0.05), ("b1", 2, 0.05)], done)
        processes.close()
        assert await asyncio.wait_for(tasks["a1"], 30) == 0.3  # the job a process has is finished
        for name in ("a2", "b1"):
            with pytest.raises(Unavailable, match="stopping"):
                await tasks[name]
        with pytest.raises(Unavailable, match="stopping"):
            await processes.run(_sleep, 0, org_id=3)

    _run(test)
