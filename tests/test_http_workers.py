"""The first process keeps its Slack HTTP workers alive (`bot.http_workers.keep_alive`):
a dead worker is started again, at once after a steady run, later while it keeps dying.
Fake processes and a fake clock; the real `kill -9` is in tests/adapters/test_slack_workers.py."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.http_workers import BACKOFF_FIRST, BACKOFF_MAX, STEADY, keep_alive


class FakeWorker:
    def __init__(self, number: int) -> None:
        self.name = f"paperboy-slack-{number}"
        self.number = number
        self.exitcode: int | None = None
        self.alive = True

    def is_alive(self) -> bool:
        return self.alive

    def die(self) -> None:
        self.alive, self.exitcode = False, -9


async def test_a_dead_worker_is_started_again_and_one_that_keeps_dying_waits_longer() -> None:
    clock = [0.0]
    started: list[int] = []

    def restart(number: int) -> Any:
        started.append(number)
        return FakeWorker(number)

    workers: list[Any] = [FakeWorker(1), FakeWorker(2)]
    keeper = asyncio.create_task(keep_alive(workers, restart, every=0.001, clock=lambda: clock[0]))

    async def settle() -> None:
        await asyncio.sleep(0.02)

    try:
        await settle()  # the keeper looked once: both workers born at 0
        clock[0] = STEADY + 1  # worker 2 ran a steady minute, then died: back at once
        workers[1].die()
        await settle()
        assert started == [2] and workers[1].is_alive() and workers[0].number == 1

        waited: list[float] = []
        for _ in range(8):  # it dies right after each start: 5 s, 10 s, ... up to 5 min
            workers[1].die()
            await settle()
            assert len(started) == 1 + len(waited)  # not yet
            waits = BACKOFF_FIRST * 2 ** len(waited)
            waited.append(min(BACKOFF_MAX, waits))
            clock[0] += waited[-1] - 0.5
            await settle()
            assert len(started) == len(waited)  # still not
            clock[0] += 0.5
            await settle()
            assert len(started) == 1 + len(waited)
        assert waited[:3] == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST]
        assert waited[-1] == BACKOFF_MAX
        assert workers[0].number == 1 and not any(n == 1 for n in started)  # never touched
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
