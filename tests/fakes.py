"""Fakes at our own boundary: an in-memory bot (`TestBot`, the `bot` fixture), a recording
`bot.ports.Adapter` with scripted failures, remote sources that answer from a dict, and the
child-process entry points of the crash and claim-race tests.

`FakeAdapter.send` either accepts a post (recorded in `delivered`, the way a user would see it in
the channel) or raises a scripted `DeliveryError`:
- `rate_limited(retry_after)`: a 429 before acceptance, nothing posted;
- `ambiguous()`: the platform accepted the post, then the answer was lost (timeout);
- `gone()`: the bot was removed from the channel, nothing posted.
With `record=PATH` every accepted post is also appended (fsync'd) to a JSON-lines file, so a
test can count posts made by a process it killed.

Run as a script (`python tests/fakes.py crash DB_URL RECORD NOW`) it runs one digest tick whose
adapter writes the post and then SIGKILLs its own process: a crash in the middle of posting.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import DeliveryError, SourceError
from bot.messages import Answer, ChannelRef, Invocation, Reply, UserRef
from bot.models import PaperIn
from bot.ports import Outbox, PaperLookup

if TYPE_CHECKING:
    from bot.messages import ReactionEvent
    from bot.service import BotService
    from bot.taste_store import Outcome


@dataclass(frozen=True)
class Post:
    channel: str
    reply: Reply
    idempotency_key: str

    @property
    def paper_ids(self) -> list[str]:
        return [card.id for card in self.reply.cards]


def rate_limited(retry_after: float = 30.0) -> DeliveryError:
    return DeliveryError("429 Too Many Requests", retry_after=retry_after)


def ambiguous() -> DeliveryError:
    return DeliveryError("timed out after the request was written", ambiguous=True)


def gone() -> DeliveryError:
    return DeliveryError("channel_not_found", gone=True)


class FakeAdapter:
    """A platform that records what it accepted; `script` holds the next outcomes."""

    def __init__(
        self,
        platform: str = "slack",
        *,
        record: Path | None = None,
        after_post: Callable[[Post], None] | None = None,
    ) -> None:
        self.platform = platform
        self.record = record
        self.after_post = after_post
        self.delivered: list[Post] = []  # what users see in their channels
        self.attempts: list[Post] = []  # every call to send, accepted or not
        self.script: deque[DeliveryError | None] = deque()

    def fail_next(self, *errors: DeliveryError | None) -> None:
        """The next sends raise these (None: that send succeeds)."""
        self.script.extend(errors)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        post = Post(channel.key, reply, idempotency_key)
        self.attempts.append(post)
        outcome = self.script.popleft() if self.script else None
        if outcome is not None and not outcome.ambiguous:
            raise outcome  # rejected before acceptance: nothing is posted
        self.delivered.append(post)
        self._record(post)
        if self.after_post is not None:
            self.after_post(post)
        if outcome is not None:
            raise outcome  # accepted, but we never heard back
        return f"msg-{len(self.delivered)}"

    def papers_to(self, channel: str) -> list[str]:
        """Every paper posted to `channel`, in order, duplicates kept."""
        return [pid for post in self.delivered if post.channel == channel for pid in post.paper_ids]

    def _record(self, post: Post) -> None:
        if self.record is None:
            return
        line = json.dumps(
            {
                "channel": post.channel,
                "papers": post.paper_ids,
                "key": post.idempotency_key,
                "title": post.reply.title,
            }
        )
        with self.record.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


class FakeOutbox(Outbox):
    """The running platforms, as `FakeAdapter`s: `sent` is every post users see."""

    def __init__(self, *platforms: str) -> None:
        super().__init__({name: FakeAdapter(name) for name in platforms})

    @property
    def sent(self) -> list[Post]:
        return [post for a in self.adapters.values() for post in a.delivered]  # type: ignore[attr-defined]


class FakeRemote:
    """Remote sources that answer from a dict, or fail; `lookups` records what was asked."""

    def __init__(self, papers: dict[str, PaperIn] | None = None, fail: bool = False) -> None:
        self.papers = papers or {}
        self.fail = fail
        self.lookups: list[str] = []

    async def lookup_paper(self, paper_id: str) -> PaperIn | None:
        self.lookups.append(paper_id)
        if self.fail:
            raise SourceError("Hugging Face answered 503")
        return self.papers.get(paper_id)

    async def search_remote(self, query: str, limit: int) -> list[PaperIn]:
        if self.fail:
            raise SourceError("Hugging Face answered 503")
        return [p for p in self.papers.values() if query.lower() in p.title.lower()][:limit]


CHAN = ChannelRef("slack", "T1", "C1")


class TestBot:
    """An in-memory paperboy in the spirit of errbot's testbot: `PAPERS` in a SQLite store with
    its index, a clock standing at `now`, a `FakeOutbox` for slack, discord and the console.

        reply = await bot.ask("top week")
        assert "Direct Preference Optimization" in reply.plain_text()
        await bot.ask("digest post", after=...); bot.outbox.sent

    `with_remote(FakeRemote(...))` and `with_ack_budget(0.01)` give the same bot (same store)
    built with remote sources or a shorter ack budget."""

    __test__ = False  # not a test class, whatever its name

    def __init__(
        self,
        store: Any,
        now: datetime,
        remote: PaperLookup | None = None,
        ack_budget: float | None = None,
    ) -> None:
        from bot.config import Settings
        from bot.service import ACK_BUDGET, BotService

        self.store = store
        self.now = now
        self.remote = remote
        self.outbox = FakeOutbox("slack", "discord", "console")
        self.settings = Settings.load(None, {})
        self.service = BotService(
            self.settings,
            store,
            clock=lambda: self.now,
            remote=remote,
            outbox=self.outbox,
            ack_budget=ACK_BUDGET if ack_budget is None else ack_budget,
        )

    def with_remote(self, remote: PaperLookup) -> TestBot:
        """The same papers, with remote sources."""
        return TestBot(self.store, self.now, remote)

    def with_ack_budget(self, seconds: float) -> TestBot:
        """The same papers; answers slower than `seconds` come back `Pending`."""
        return TestBot(self.store, self.now, self.remote, seconds)

    def invocation(
        self, text: str, channel: ChannelRef = CHAN, *, can_manage: bool = True
    ) -> Invocation:
        return Invocation(text, channel, UserRef(channel.platform, "U1"), can_manage=can_manage)

    async def handle(self, text: str, channel: ChannelRef = CHAN, **kw: Any) -> Answer:
        """What an adapter gets: a Reply, or a Pending to ack first."""
        return await self.service.handle(self.invocation(text, channel, **kw))

    async def ask(self, text: str, channel: ChannelRef = CHAN, **kw: Any) -> Reply:
        """The whole answer to `/papers <text>` in `channel`."""
        return await self.service.ask(self.invocation(text, channel, **kw))


def read_record(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------- child processes


def claim_worker(url: str, barrier: Any, results: Any) -> None:
    """One process of the PostgreSQL claim race: wait for the other, then claim."""
    from bot.db import make_engine
    from bot.ledger import Ledger

    engine = make_engine(url)
    ledger = Ledger(engine)
    with engine.connect():  # connected before the start signal, so both really race
        pass
    barrier.wait(timeout=30)
    now = datetime.fromisoformat("2026-06-15T12:00:00+00:00")
    results.put(ledger.claim("slack:T1:C1", "2401.00001", now))
    engine.dispose()


def _crash(url: str, record: str, now_text: str) -> None:
    """One digest tick whose post is written, then the process is SIGKILLed."""
    from bot.config import Settings
    from bot.db import make_engine
    from bot.ports import Outbox
    from bot.service import BotService
    from bot.store import PaperStore

    now = datetime.fromisoformat(now_text)
    store = PaperStore(make_engine(url))
    service = BotService(Settings(), store, clock=lambda: now)

    def die(_post: Post) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    adapter = FakeAdapter("slack", record=Path(record), after_post=die)
    asyncio.run(service.deliver_due(Outbox({"slack": adapter}), now))
    raise SystemExit("the adapter should have killed this process")


# ------------------------------------------------------------------- builders


def paper(pid: str, title: str, abstract: str = "", **fields: Any) -> PaperIn:
    """A hand-made `PaperIn`; `fields` are PaperIn's own (source defaults to "hf")."""
    fields.setdefault("source", "hf")
    return PaperIn(id=pid, title=title, abstract=abstract, **fields)


def sample_papers(now: datetime) -> list[PaperIn]:
    """The papers the `bot` fixture knows (and `CommandSpec` examples are checked against):
    the DPO paper (top today), a related one, an older diffusion paper, an old-style id."""
    from datetime import timedelta

    return [
        paper(
            "2305.18290",
            "Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
            "We introduce Direct Preference Optimization (DPO), a stable alternative to RLHF.",
            authors=["Rafael Rafailov", "Archit Sharma"],
            upvotes=120,
            hf_daily_date=now.date(),
            published_at=now - timedelta(days=1),
            categories=["cs.LG"],
            github_repo="https://github.com/eric-mitchell/direct-preference-optimization",
            github_stars=2500,
            organization="Stanford",
            ai_keywords=["preference optimization"],
            arxiv_comment="Accepted at NeurIPS 2023",
        ),
        paper(
            "2401.00001",
            "Preference tuning without reinforcement learning",
            "We study direct preference optimization for small models.",
            authors=["Ada Lovelace"],
            upvotes=5,
            hf_daily_date=now.date() - timedelta(days=3),
            published_at=now - timedelta(days=3),
        ),
        paper(
            "2402.00002",
            "Diffusion models for protein design",
            "A diffusion model that designs proteins.",
            authors=["Grace Hopper"],
            upvotes=40,
            project_page="https://example.org/protein-diffusion",
            hf_daily_date=now.date() - timedelta(days=20),
            published_at=now - timedelta(days=20),
            categories=["q-bio.BM"],
        ),
        paper("hep-th/9901001", "Strings on a lattice", "Old-style identifiers still work."),
    ]


def setup_channel(
    store: Any,
    key: str,
    topics: list[str],
    now: datetime,
    *,
    schedule: str = "daily",
    at: str = "09:00",
    timezone: str = "UTC",
    **values: Any,
) -> None:
    """A channel following `topics` on a schedule, as `/papers subscribe` + `schedule` leave it."""
    from bot.schedules import Schedule

    store.ensure_channel(key, now)
    for topic in topics:
        store.subscribe(key, topic, now)
    plan = Schedule.from_stored(schedule, at, timezone)
    store.update_channel(
        key,
        schedule=schedule,
        digest_time=at,
        timezone=timezone,
        next_digest_at=plan.next_slot(now),
        **values,
    )


def catch_up(store: Any, timeout: float = 20.0) -> int:
    """`sync_index` until the feed's bound passes every change committed so far.

    On PostgreSQL the bound is the oldest transaction still running in the database, and
    other connections of the test share it: a catch-up may rightly stop short for a moment."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from bot.models import Paper

    with Session(store.engine) as session:
        latest = session.execute(select(func.max(Paper.change_seq))).scalar_one() or 0
    deadline = time.monotonic() + timeout
    done = 0
    while True:
        ready = store.feed_bound() > latest
        done += int(store.sync_index())
        if ready or time.monotonic() > deadline:
            return done
        time.sleep(0.05)


def _main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "crash":
        _crash(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit("usage: fakes.py crash DB_URL RECORD NOW")


if __name__ == "__main__":
    _main()


class Clock:
    """A settable clock: pass it (or `lambda: clock.now`) as a service's clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Reacting:
    """A service whose `react` calls are recorded with their outcomes (the platforms'
    reaction tests): `reached` waits for the ones a dispatch causes, since the platforms'
    clients run listeners as tasks after acking."""

    def __init__(self, service: BotService) -> None:
        self.service = service
        self.outcomes: list[Outcome | None] = []
        real = service.react

        async def react(event: ReactionEvent) -> Outcome | None:
            outcome = await real(event)
            self.outcomes.append(outcome)
            return outcome

        service.react = react  # type: ignore[method-assign]

    async def reached(self, start: int, calls: int) -> list[Outcome | None]:
        """The outcomes past `start`, once `calls` of them arrived (or after 5 s)."""
        for _ in range(500):
            if len(self.outcomes) >= start + calls:
                break
            await asyncio.sleep(0.01)
        return self.outcomes[start:]
