"""Refreshing the store from HF and arXiv, served by httpx.MockTransport, checked in the store.

What a user would notice: papers appear, counts update, HF and arXiv make one record, a
failing source changes nothing and shows up in the source status, the other source still
comes in, and a replaced old paper never shows up as new.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.errors import SourceError
from bot.models import PaperIn
from bot.sources.refresh import Sources
from bot.store import PaperStore
from tests.conftest import FIXTURES

SRC = FIXTURES / "sources"
NOW = datetime(2026, 6, 12, 12, 0, tzinfo=UTC)
Handler = Callable[[httpx.Request], httpx.Response]


def settings(**hf: Any) -> Settings:
    return Settings.model_validate(
        {
            "sources": {
                "huggingface": {"base_url": "http://hf.test", "refresh_days": 0, **hf},
                "arxiv": {
                    "api_url": "http://export.test/api/query",
                    "feed_url": "http://rss.test/atom",
                    "categories": ["cs.CL", "cs.LG"],
                },
                "retries": 2,
            }
        }
    )


class Waits:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def sources(handler: Handler, waits: Waits | None = None, **hf: Any) -> Sources:
    waits = waits or Waits()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Sources(settings(**hf), client, sleep=waits.sleep, clock=waits.clock, rng=lambda: 0.0)


def hf_item(n: int, upvotes: int = 1, day: str = "2026-06-12") -> dict[str, Any]:
    return {
        "paper": {
            "id": f"2606.{n:05d}",
            "authors": [{"_id": "x", "name": f"Author {n}", "hidden": False}],
            "publishedAt": "2026-06-10T00:00:00.000Z",
            "submittedOnDailyAt": f"{day}T00:00:00.000Z",
            "title": f"Paper number {n}",
            "summary": f"Abstract of paper {n}, long enough to be the full abstract text.",
            "upvotes": upvotes,
        },
        "numComments": 0,
    }


class Server:
    """Routes by host and path; counts requests; answers 404 for anything unknown."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[httpx.Request], httpx.Response]] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get(f"{request.url.host}{request.url.path}")
        return route(request) if route else httpx.Response(404)

    def body(self, key: str, content: bytes, status: int = 200) -> None:
        self.routes[key] = lambda _r: httpx.Response(status, content=content)

    def daily(self, pages: dict[tuple[str, int], Any]) -> None:
        def route(request: httpx.Request) -> httpx.Response:
            key = (request.url.params["date"], int(request.url.params["p"]))
            assert request.url.params["limit"] == "100"
            return httpx.Response(200, json=pages.get(key, []))

        self.routes["hf.test/api/daily_papers"] = route


def fixture_feed(server: Server, name: str = "arxiv_rss.xml") -> None:
    server.body("rss.test/atom/cs.CL+cs.LG", (SRC / name).read_bytes())


def snapshot(store: PaperStore) -> list[dict[str, Any]]:
    return store.changes((0, ""), 2**62)  # every paper, as stored


# ------------------------------------------------------------------ HF


async def test_hf_daily_pages_until_a_short_page(store: PaperStore) -> None:
    server = Server()
    server.daily(
        {
            ("2026-06-12", 0): [hf_item(n) for n in range(100)],
            ("2026-06-12", 1): [hf_item(n) for n in range(100, 130)],
        }
    )
    report = await sources(server).refresh(store, NOW, source="hf")
    assert report.sources["hf"].error is None
    assert len(report.sources["hf"].added) == 130
    assert store.count() == 130
    assert [r.url.params["p"] for r in server.requests] == ["0", "1"]


async def test_hf_refresh_covers_recent_days_and_updates_upvotes(store: PaperStore) -> None:
    server = Server()
    pages = {("2026-06-11", 0): [hf_item(1, upvotes=3, day="2026-06-11")]}
    server.daily(pages)
    src = sources(server, refresh_days=2)
    first = await src.refresh(store, NOW, source="hf")
    assert first.sources["hf"].added == ["2606.00001"]
    days = {r.url.params["date"] for r in server.requests}
    assert days == {"2026-06-10", "2026-06-11", "2026-06-12"}
    pages[("2026-06-11", 0)] = [hf_item(1, upvotes=25, day="2026-06-11")]
    second = await src.refresh(store, NOW, source="hf")
    assert second.sources["hf"].added == [] and second.sources["hf"].updated == ["2606.00001"]
    paper = store.get("2606.00001")
    assert paper is not None and paper.upvotes == 25
    assert paper.hf_daily_date == date(2026, 6, 11)


async def test_second_identical_fetch_adds_and_updates_nothing(store: PaperStore) -> None:
    server = Server()
    server.daily({("2026-06-12", 0): json.loads((SRC / "hf_daily_2026.json").read_text())})
    fixture_feed(server)
    src = sources(server)
    first = await src.refresh(store, NOW)
    assert first.added == 3 and first.failed == []
    second = await src.refresh(store, NOW)
    assert (second.added, second.updated) == (0, 0)


@pytest.mark.parametrize(
    "fault",
    [
        httpx.Response(500),
        httpx.Response(200, content=b'[{"paper": {"id": "2606.0'),  # truncated body
        httpx.Response(200, content=b"<html>we are down</html>"),
        httpx.Response(200, json={"error": "unexpected shape"}),
    ],
    ids=["5xx", "truncated", "html", "shape"],
)
async def test_failing_hf_changes_nothing_and_is_recorded(
    store: PaperStore, fault: httpx.Response
) -> None:
    server = Server()
    server.daily({("2026-06-12", 0): [hf_item(1, upvotes=5)]})
    await sources(server).refresh(store, NOW, source="hf")
    before = snapshot(store)

    broken = Server()
    broken.routes["hf.test/api/daily_papers"] = lambda _r: fault
    later = datetime(2026, 6, 12, 13, 0, tzinfo=UTC)
    report = await sources(broken).refresh(store, later, source="hf")
    assert report.failed == ["hf"]
    assert report.sources["hf"].error
    assert snapshot(store) == before
    state = store.source_state("hf")
    assert state is not None
    assert state.consecutive_failures == 1
    assert state.last_error and state.last_error_at is not None
    # The HTML listing was tried as a fallback (the API failed) and failed too (404 here).
    assert any(r.url.path == "/papers/date/2026-06-12" for r in broken.requests)

    # A later success resets the failure count.
    await sources(server).refresh(store, datetime(2026, 6, 12, 14, 0, tzinfo=UTC), source="hf")
    state = store.source_state("hf")
    assert state is not None and state.consecutive_failures == 0
    assert state.last_success_at is not None and state.last_success_at.hour == 14


async def test_failure_on_a_later_page_writes_nothing(store: PaperStore) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.params["p"] == "0":
            return httpx.Response(200, json=[hf_item(n) for n in range(100)])
        return httpx.Response(502)

    server = Server()
    server.routes["hf.test/api/daily_papers"] = route
    report = await sources(server).refresh(store, NOW, source="hf")
    assert report.failed == ["hf"]
    assert store.count() == 0


async def test_hf_api_down_falls_back_to_the_listing_page(store: PaperStore) -> None:
    server = Server()
    server.body("hf.test/api/daily_papers", b"", status=503)
    server.body("hf.test/papers/date/2026-06-12", (SRC / "hf_listing.html").read_bytes())
    report = await sources(server).refresh(store, NOW, source="hf")
    assert report.failed == []
    assert sorted(report.sources["hf"].added) == ["2606.00001", "2606.00002"]


async def test_one_failing_source_does_not_stop_the_other(store: PaperStore) -> None:
    server = Server()
    server.body("hf.test/api/daily_papers", b"", status=500)
    fixture_feed(server)
    report = await sources(server).refresh(store, NOW)
    assert report.failed == ["hf"]
    assert sorted(report.sources["arxiv"].added) == ["2606.00001", "2606.00003"]
    assert "hf: FAILED" in report.summary()


# ------------------------------------------------------------------ arXiv


async def test_arxiv_feed_adds_new_and_cross_and_replace_only_updates(store: PaperStore) -> None:
    store.upsert_many(
        [PaperIn(id="2512.00009", title="Replaced Cross-List", source="arxiv", version=2)], NOW
    )
    server = Server()
    fixture_feed(server)
    src = sources(server)
    report = await src.refresh(store, NOW, source="arxiv")
    # 1901.00001 (a replacement of a paper we never had) is not added.
    assert sorted(report.sources["arxiv"].added) == ["2606.00001", "2606.00003"]
    assert store.get("1901.00001") is None

    atom = Server()
    fixture_feed(atom, "arxiv_atom_feed.xml")
    report = await sources(atom).refresh(store, NOW, source="arxiv")
    assert report.sources["arxiv"].added == ["2606.00004"]
    assert report.sources["arxiv"].updated == ["2512.00009"]
    replaced = store.get("2512.00009")
    assert replaced is not None and replaced.version == 3


async def test_empty_feed_is_a_success(store: PaperStore) -> None:
    server = Server()
    fixture_feed(server, "arxiv_feed_empty.xml")
    report = await sources(server).refresh(store, NOW, source="arxiv")
    assert report.failed == [] and report.added == 0
    state = store.source_state("arxiv")
    assert state is not None and state.last_success_at is not None


async def test_arxiv_backfill_by_date_pages_the_api_slowly(store: PaperStore) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["start"])
        assert request.url.params["max_results"] == "200"
        assert "submittedDate:[202606100000 TO 202606102359]" in request.url.params["search_query"]
        total = 250
        entries = "".join(
            f"<entry><id>http://arxiv.org/abs/2606.{n:05d}v1</id><title>Paper {n}</title>"
            f"<summary>Abstract {n}</summary><published>2026-06-10T10:00:00Z</published></entry>"
            for n in range(start, min(start + 200, total))
        )
        body = (
            '<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
            f"<opensearch:totalResults>{total}</opensearch:totalResults>"
            f"<opensearch:startIndex>{start}</opensearch:startIndex>{entries}</feed>"
        )
        return httpx.Response(200, content=body.encode())

    server = Server()
    server.routes["export.test/api/query"] = route
    waits = Waits()
    report = await sources(server, waits).refresh(store, NOW, source="arxiv", day=date(2026, 6, 10))
    assert len(report.sources["arxiv"].added) == 250
    assert [r.url.params["start"] for r in server.requests] == ["0", "200"]
    assert waits.waits == [3.0]  # one request per 3 s


async def test_arxiv_api_error_feed_is_recorded(store: PaperStore) -> None:
    server = Server()
    server.body("export.test/api/query", (SRC / "arxiv_api_error.xml").read_bytes(), status=400)
    with pytest.raises(SourceError, match="incorrect id format"):
        await sources(server).arxiv.lookup(["xyz"])
    report = await sources(server).refresh(store, NOW, source="arxiv", since=date(2026, 6, 1))
    assert "incorrect id format for xyz" in (report.sources["arxiv"].error or "")
    state = store.source_state("arxiv")
    assert state is not None and state.consecutive_failures == 1


# ------------------------------------------------------------------ merging


async def test_hf_and_arxiv_merge_into_one_record(store: PaperStore) -> None:
    server = Server()
    server.daily({("2026-06-12", 0): json.loads((SRC / "hf_daily_2026.json").read_text())})
    fixture_feed(server)
    await sources(server).refresh(store, NOW)
    paper = store.get("2606.00001")
    assert paper is not None
    assert sorted(paper.sources) == ["arxiv", "hf"]
    assert paper.upvotes == 42 and paper.comments == 3  # from HF
    assert paper.categories == ["cs.CL", "cs.LG"]  # from arXiv
    assert paper.ai_summary == "DPO works well."
    # The RSS teaser ("We study Direct Preference Optimization (DPO).") did not replace the
    # fuller HF abstract.
    assert paper.abstract.endswith("52.56\\% on the benchmark &amp; more.")
    assert paper.github_repo == "https://github.com/example/dpo-dft"


async def test_empty_fields_from_a_worse_source_never_erase_good_ones(store: PaperStore) -> None:
    server = Server()
    server.daily({("2026-06-12", 0): json.loads((SRC / "hf_daily_2026.json").read_text())})
    await sources(server).refresh(store, NOW, source="hf")
    store.upsert_many(
        [PaperIn(id="2606.00001", title="Direct Preference Optimization", source="arxiv")], NOW
    )
    paper = store.get("2606.00001")
    assert paper is not None
    assert paper.title.startswith("Direct Preference Optimization for $\\nabla^2$DFT")
    assert paper.authors == ["Ada Lovelace", "Alan Turing"]
    assert paper.upvotes == 42 and paper.ai_keywords == ["DPO", "preference learning"]


# ------------------------------------------------------------------ on demand


async def test_lookup_paper_tries_hf_then_arxiv() -> None:
    server = Server()
    server.body("hf.test/api/papers/2606.00001", (SRC / "hf_paper.json").read_bytes())
    server.body("export.test/api/query", (SRC / "arxiv_api.xml").read_bytes())
    src = sources(server)
    found = await src.lookup_paper("https://huggingface.co/papers/2606.00001")
    assert found is not None and found.source == "hf" and found.upvotes == 50
    # HF answers 404 for 2606.00002: the arXiv API is asked (it returns 2606.00001 and an
    # old-style paper, neither of which is 2606.00002).
    assert await src.lookup_paper("2606.00002v1") is None
    # Old-style ids never go to HF (it indexes only new-style ones).
    old = await src.lookup_paper("hep-th/9901001")
    assert old is not None and old.source == "arxiv"
    assert not any("hep-th" in r.url.path for r in server.requests if r.url.host == "hf.test")
    assert await src.lookup_paper("not an id") is None


async def test_lookup_paper_when_hf_is_down_still_asks_arxiv() -> None:
    server = Server()
    server.body("hf.test/api/papers/2606.00001", b"", status=503)
    server.body("export.test/api/query", (SRC / "arxiv_api.xml").read_bytes())
    found = await sources(server).lookup_paper("2606.00001")
    assert found is not None and found.source == "arxiv" and found.version == 2


async def test_search_remote_accepts_nested_items() -> None:
    server = Server()
    server.body("hf.test/api/papers/search", (SRC / "hf_search_nested.json").read_bytes())
    papers = await sources(server).search_remote("direct preference", 5)
    assert [p.id for p in papers] == ["2305.18290"]
    (request,) = server.requests
    assert request.url.params["q"] == "direct preference"
    assert request.url.params["limit"] == "5"


async def test_since_too_far_back_is_refused_without_blaming_the_source(
    store: PaperStore,
) -> None:
    server = Server()
    with pytest.raises(SourceError, match="more than 60 days back"):
        await sources(server).refresh(store, NOW, since=date(2026, 1, 1))
    assert server.requests == [] and store.source_states() == []


async def test_since_fetches_every_day_up_to_today(store: PaperStore) -> None:
    server = Server()
    server.daily({})
    report = await sources(server).refresh(store, NOW, source="hf", since=date(2026, 6, 9))
    assert report.failed == []
    assert sorted(r.url.params["date"] for r in server.requests) == [
        "2026-06-09",
        "2026-06-10",
        "2026-06-11",
        "2026-06-12",
    ]
