"""Turn stored papers into what users see (`PaperCard`)."""

from __future__ import annotations

from urllib.parse import quote_plus

from bot.ids import abs_url, hf_url, is_new_style
from bot.messages import PaperCard, shorten
from bot.models import Paper
from bot.venues import venue_of

REASON_CHARS = 100  # "like 2 papers 👍'd here": one short line on every platform
SAMPLE = "demo"  # the bundled demo papers: their ids are made up (see bot/data)


def to_card(
    paper: Paper, score: float = 0.0, topics: tuple[str, ...] = (), reason: str = ""
) -> PaperCard:
    sample = list(paper.sources) == [SAMPLE]
    on_hf = not sample and ("hf" in paper.sources or paper.hf_daily_date is not None)
    venue = venue_of(paper.arxiv_comment, paper.journal_ref)
    return PaperCard(
        id=paper.id,
        title=paper.title,
        # A made-up id must not become a link that leads nowhere: search arXiv by title.
        url=title_search_url(paper.title) if sample else abs_url(paper.id),
        authors=tuple(paper.authors),
        published=(paper.published_at.date() if paper.published_at else paper.hf_daily_date),
        upvotes=paper.upvotes,
        comments=paper.comments,
        categories=tuple(paper.categories),
        abstract=paper.abstract,
        summary=paper.ai_summary or "",
        github_repo=paper.github_repo,
        github_stars=paper.github_stars,
        project_page=paper.project_page,
        organization=(paper.organization or "").strip() or None,
        venue=venue.label() if venue else None,
        hf_url=hf_url(paper.id) if on_hf and is_new_style(paper.id) else None,
        matched_topics=topics,
        score=score,
        reason=shorten(reason, REASON_CHARS),
    )


def title_search_url(title: str) -> str:
    return f"https://arxiv.org/search/?searchtype=title&query={quote_plus(title[:200])}"
