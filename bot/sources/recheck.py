"""Asking the sources again about recent papers: what appears days after a paper.

Code links and GitHub stars reach Hugging Face days after a paper (code on 0 of 10 papers on
their first day, measured on public feeds); a new arXiv version, a comment saying "accepted
at ...", or a journal reference (added without a new version, AX-4) appear later still, and
arXiv's listing feeds carry no comment at all (AX-5). So each refresh, besides re-reading the
Daily Papers lists of the last `refresh_days`, asks again about a bounded number of papers
announced in the last `[sources] recheck_days`:

- Hugging Face: `/api/papers/{id}` for `[sources.huggingface] recheck_papers` papers, one
  request each (the shared Http: retries, 429 waits);
- arXiv: one export-API `id_list` request for `[sources.arxiv] recheck_papers` papers (its
  Throttle keeps one request per 3 seconds), today's replaced papers first.

The papers asked longest ago (never asked first) go first. Each asked paper's `*_checked_at`
is stamped (without moving the change feed) by the refresh once the answers are stored
(`Rechecked.asked`): a process killed in between asks about them again, never skips them.
The answers are merged like any record: a field the answer lacks never erases a known one,
and what changed moves the feed and records paper events (bot.paper_events). A recheck that
fails is logged and stops; it never fails the refresh of its source (the lists and the feed
were read).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.config import Settings
from bot.errors import SourceError
from bot.ids import is_new_style
from bot.models import PaperIn
from bot.paper_rows import merge_into
from bot.sources.arxiv import Arxiv
from bot.sources.hf import HuggingFace
from bot.store import PaperStore

logger = logging.getLogger(__name__)


class Rechecked(NamedTuple):
    """What a source told again, and which papers it was asked about (to stamp as checked
    once the answers are stored)."""

    papers: list[PaperIn]
    asked: list[str]


async def recheck_hf(
    hf: HuggingFace,
    store: PaperStore,
    settings: Settings,
    now: datetime,
    listed: Sequence[str] = (),
) -> Rechecked:
    """The recent papers HF tells about again (unknown ones left out). Papers on the lists
    just read (`listed`) count as asked: the lists carry the same fields."""
    cfg = settings.sources
    since = now - timedelta(days=cfg.recheck_days)
    limit = cfg.huggingface.recheck_papers
    skip = set(listed)
    ids = await asyncio.to_thread(
        store.recheck_candidates, "hf", since, limit + len(skip) if limit else 0
    )
    found: list[PaperIn] = []
    asked: list[str] = list(skip)
    for pid in [i for i in ids if i not in skip][:limit]:
        if not is_new_style(pid):  # HF pages exist for new-style ids only
            asked.append(pid)
            continue
        try:
            paper = await hf.paper(pid)
        except SourceError as exc:
            logger.warning("hf: recheck stopped at %s: %s", pid, exc)
            break
        asked.append(pid)
        if paper is not None and paper.id == pid:
            found.append(paper)
    return Rechecked(found, asked)


async def recheck_arxiv(
    arxiv: Arxiv,
    store: PaperStore,
    settings: Settings,
    now: datetime,
    first: Sequence[str] = (),
) -> Rechecked:
    """Recent papers (`first`, then the ones asked longest ago) looked up in one request."""
    cfg = settings.sources
    since = now - timedelta(days=cfg.recheck_days)
    ids = await asyncio.to_thread(
        store.recheck_candidates, "arxiv", since, cfg.arxiv.recheck_papers, first
    )
    if not ids:
        return Rechecked([], [])
    try:
        papers = await arxiv.lookup(ids)
    except SourceError as exc:
        logger.warning("arxiv: recheck of %d papers failed: %s", len(ids), exc)
        return Rechecked([], [])
    wanted = set(ids)
    return Rechecked([p for p in papers if p.id in wanted], ids)


def merged(papers: Sequence[PaperIn], more: Sequence[PaperIn]) -> list[PaperIn]:
    """`papers` with `more` merged in by id (what `more` knows wins), new ones appended."""
    by_id = {p.id: p for p in papers}
    for paper in more:
        if paper.id in by_id:
            merge_into(by_id[paper.id], paper)
        else:
            by_id[paper.id] = paper
    return list(by_id.values())
