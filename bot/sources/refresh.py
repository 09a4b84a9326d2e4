"""Refreshing the store from the sources, and on-demand lookups: what service/scheduler call.

`Sources` bundles the per-source fetchers over one shared httpx.AsyncClient:
- `refresh(store, now, source=None, day=None, since=None) -> RefreshReport`: Hugging Face
  (today's list plus the last `refresh_days` days, so upvotes and comments stay current) and
  arXiv (today's feed of the configured categories; with a date, the export API backfills).
  Each source is fetched and parsed completely before anything is written; then the papers go
  to the store in one transaction per batch. A source that fails writes nothing, its failure
  is recorded in SourceState, and the other source still runs. Success resets the failures.
- `lookup_paper(id)` and `search_remote(q, limit)` (the `bot.ports.PaperLookup` protocol):
  for `/papers <id>` of a paper the store lacks, and for searches with too few local hits.

arXiv `replace` announcements only update papers the store already has (see arxiv.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx

from bot.config import Settings
from bot.errors import SourceError
from bot.ids import is_new_style, parse_arxiv_id
from bot.models import PaperIn
from bot.paper_events import KEEP_EVENTS
from bot.sources.arxiv import ADD_TYPES, UPDATE_TYPES, Arxiv
from bot.sources.common import counting_skips
from bot.sources.hf import HuggingFace
from bot.sources.http import Clock, Http, Sleep, Throttle
from bot.sources.recheck import Rechecked, merged, recheck_arxiv, recheck_hf
from bot.store import PaperStore

logger = logging.getLogger(__name__)

HF = "hf"
ARXIV = "arxiv"
SOURCES = (HF, ARXIV)
MAX_DAYS = 60  # a --since further back than this is a backfill: use the export API or import


@dataclass
class SourceReport:
    source: str
    fetched: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "id: why", records the store refused
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"{self.source}: FAILED: {self.error}"
        text = (
            f"{self.source}: {self.fetched} fetched, {len(self.added)} added, "
            f"{len(self.updated)} updated"
        )
        if self.skipped:
            text += f", {len(self.skipped)} skipped ({'; '.join(self.skipped[:3])})"
        return text


@dataclass
class RefreshReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)

    @property
    def added(self) -> int:
        return sum(len(r.added) for r in self.sources.values())

    @property
    def updated(self) -> int:
        return sum(len(r.updated) for r in self.sources.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.sources.items() if r.error]

    def summary(self) -> str:
        return "\n".join(r.line() for r in self.sources.values()) or "no source enabled"


def _days(today: date, day: date | None, since: date | None, back: int) -> list[date]:
    """The Daily Papers lists to fetch, newest first."""
    if day is not None:
        return [day]
    first = since if since is not None else today - timedelta(days=back)
    if first > today:
        return []
    return [today - timedelta(days=n) for n in range((today - first).days + 1)]


class Sources:
    """All paper sources over one shared client. Sleep/clock/rng injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        cfg = settings.sources
        cap = cfg.max_response_mb * 1_000_000
        self.hf = HuggingFace(
            Http(client, HF, retries=cfg.retries, sleep=sleep, rng=rng, max_bytes=cap),
            cfg.huggingface.base_url,
        )
        # arXiv's terms cover the API and the feeds alike: one request per interval.
        throttle = Throttle(cfg.arxiv.min_interval_seconds, clock=clock, sleep=sleep)
        self.arxiv = Arxiv(
            Http(
                client,
                ARXIV,
                retries=cfg.retries,
                throttle=throttle,
                sleep=sleep,
                rng=rng,
                max_bytes=cap,
            ),
            cfg.arxiv.api_url,
            cfg.arxiv.feed_url,
        )

    # ------------------------------------------------------------ on demand

    async def lookup_paper(self, paper_id: str) -> PaperIn | None:
        """One paper by id or URL: HF first (upvotes, AI summary), then the arXiv API."""
        parsed = parse_arxiv_id(paper_id)
        if parsed is None:
            return None
        found: PaperIn | None = None
        hf_error: SourceError | None = None
        if self.settings.sources.huggingface.enabled and is_new_style(parsed.key):
            try:
                found = await self.hf.paper(parsed.key)
            except SourceError as exc:  # arXiv may still know it
                hf_error = exc
        if found is None and self.settings.sources.arxiv.enabled:
            papers = await self.arxiv.lookup([parsed.key])
            found = next((p for p in papers if p.id == parsed.key), None)
        if found is None and hf_error is not None:
            raise hf_error
        return found

    async def search_remote(self, query: str, limit: int = 20) -> list[PaperIn]:
        """HF paper search (title, authors, content), at most `limit` papers."""
        if not self.settings.sources.huggingface.enabled or not query.strip():
            return []
        return (await self.hf.search(query, limit))[:limit]

    # ------------------------------------------------------------ refresh

    async def refresh(
        self,
        store: PaperStore,
        now: datetime,
        *,
        source: str | None = None,
        day: date | None = None,
        since: date | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> RefreshReport:
        """Fetch each enabled source (or just `source`) and merge it into the store.

        `progress` hears one line per step (a Hugging Face day, an arXiv request), so an
        operator running `paperboy fetch` sees what it is doing while it waits. One source
        failing (the network, a parser, the database) never stops the other.
        """
        say = progress or (lambda _text: None)
        if source is not None and source not in SOURCES:
            raise SourceError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
        today = now.astimezone(UTC).date()
        if since is not None and (today - since).days > MAX_DAYS:
            # A request we will not make, not a failure of the source: nothing is recorded.
            raise SourceError(
                f"--since {since} is more than {MAX_DAYS} days back; use `paperboy import` "
                "(a snapshot) for a backfill that large"
            )
        report = RefreshReport()
        cfg = self.settings.sources
        for name, enabled in ((HF, cfg.huggingface.enabled), (ARXIV, cfg.arxiv.enabled)):
            if (source is None and enabled) or source == name:
                report.sources[name] = await self._refresh_one(
                    name, store, now, _Window(day, since), say
                )
        try:
            await asyncio.to_thread(store.prune_events, now - KEEP_EVENTS)
        except Exception:  # the database; the next refresh prunes what this one could not
            logger.exception("refresh: pruning old paper events failed")
        return report

    async def _refresh_one(
        self,
        name: str,
        store: PaperStore,
        now: datetime,
        window: _Window,
        say: Callable[[str], None],
    ) -> SourceReport:
        result = SourceReport(name)
        try:
            with counting_skips() as unreadable:
                if name == HF:
                    papers, asked = await self._fetch_hf(store, now, window, say)
                else:
                    papers, asked = await self._fetch_arxiv(store, now, window, say)
        except SourceError as exc:
            result.error = str(exc)
            logger.warning("refresh of %s failed: %s", name, exc)
        except Exception as exc:  # a parser bug on data we did not foresee
            result.error = f"unexpected error reading the source: {exc!r}"[:500]
            logger.exception("refresh of %s failed unexpectedly", name)
        else:
            result.fetched = len(papers)
            await _store(store, name, papers, unreadable, now, result)
            if result.error is None and asked:
                try:
                    await asyncio.to_thread(store.mark_checked, name, asked, now)
                except Exception:  # the database: those papers are simply asked about again
                    logger.exception("refresh of %s: marking rechecked papers failed", name)
        if result.error is not None:
            store.record_source_failure(name, now, result.error)
        return result

    async def _fetch_hf(
        self,
        store: PaperStore,
        now: datetime,
        window: _Window,
        say: Callable[[str], None],
    ) -> Rechecked:
        """The papers to store, and the ids rechecked (stamped once those are stored)."""
        back = self.settings.sources.huggingface.refresh_days
        papers: dict[str, PaperIn] = {}  # a paper on two lists (or pages) counts once
        for list_day in _days(now.astimezone(UTC).date(), window.day, window.since, back):
            say(f"{HF}: Daily Papers of {list_day}")
            try:
                found = await self.hf.daily(list_day)
            except SourceError as exc:
                # The API failed: the listing page carries the same list in its JSON island.
                logger.warning("HF API failed for %s (%s); trying the HTML page", list_day, exc)
                try:
                    found = await self.hf.daily_html(list_day)
                except SourceError:
                    raise exc from None
            for paper in found:
                papers.setdefault(paper.id, paper)
        if window.day is not None or window.since is not None:
            return Rechecked(list(papers.values()), [])
        say(f"{HF}: recent papers again (code links, stars)")
        again = await recheck_hf(self.hf, store, self.settings, now, list(papers))
        return Rechecked(merged(list(papers.values()), again.papers), again.asked)

    async def _fetch_arxiv(
        self,
        store: PaperStore,
        now: datetime,
        window: _Window,
        say: Callable[[str], None],
    ) -> Rechecked:
        """As `_fetch_hf`, for arXiv."""
        categories = self.settings.sources.arxiv.categories
        day, since = window.day, window.since
        if day is not None or since is not None:
            first = day or since
            assert first is not None
            last = day or now.astimezone(UTC).date()
            say(f"{ARXIV}: {', '.join(categories)} from {first} to {last} (one request per 3 s)")
            return Rechecked(await self.arxiv.between(categories, first, last), [])
        say(f"{ARXIV}: today's announcements in {', '.join(categories)}")
        items = await self.arxiv.feed(categories)
        papers = [i.paper for i in items if i.announce_type in ADD_TYPES]
        replaced = [i.paper for i in items if i.announce_type in UPDATE_TYPES]
        if replaced:
            known = {p.id for p in store.get_many([p.id for p in replaced])}
            papers += [p for p in replaced if p.id in known]
        say(f"{ARXIV}: recent papers again (versions, comments, journal references)")
        again = await recheck_arxiv(self.arxiv, store, self.settings, now, [p.id for p in replaced])
        return Rechecked(merged(papers, again.papers), again.asked)


@dataclass(frozen=True, slots=True)
class _Window:
    """Which days a refresh asks for: one `day`, every day `since`, or the recent ones."""

    day: date | None
    since: date | None


async def _store(
    store: PaperStore,
    name: str,
    papers: list[PaperIn],
    unreadable: list[str],
    now: datetime,
    result: SourceReport,
) -> None:
    """Write one source's papers and record the outcome (`result.error` if the database
    failed: a record it refuses is skipped, not a failure)."""
    # The write runs off the event loop: a large backfill must not stall chat replies.
    try:
        upserted = await asyncio.to_thread(store.upsert_many, papers, now)
    except Exception as exc:  # the database, not a record (those are skipped)
        result.error = f"could not store its papers: {exc}"[:500]
        logger.exception("refresh of %s: storing failed", name)
        return
    result.added, result.updated = upserted.added, upserted.updated
    result.skipped = [
        *(f"{r.shown}: {r.reason}" for r in upserted.skipped),
        *unreadable,  # items the parser could not read at all
    ]
    refused = {r.id for r in upserted.skipped}
    newest = max(
        (p.published_at for p in papers if p.published_at and p.id not in refused),
        default=None,
    )
    store.record_source_success(
        name, now, added=len(upserted.added), newest=newest, skipped=result.skipped
    )
    logger.info("refresh: %s", result.line())
