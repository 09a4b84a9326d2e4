"""Fresh paper data and its events, on SQLite and on the real PostgreSQL.

What a user (and the follow-ups built on events) would notice: a code link, stars, a new
version or a venue that appears days after a paper reaches the store on a later refresh, within
a bounded number of requests; a source that knows less never erases what another knew; every
such change is recorded once as an event, in commit order, and never for a first insert or an
import.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from bot.models import PaperIn
from bot.paper_events import EventCursor
from bot.sources.snapshot import import_snapshot
from bot.store import PaperStore
from tests.test_sources_refresh import NOW, Server, fixture_feed, hf_item, sources

RECENT = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def paper(pid: str = "2606.00001", **fields: Any) -> PaperIn:
    base: dict[str, Any] = {"title": f"Paper {pid}", "source": "hf", "published_at": RECENT}
    return PaperIn(id=pid, **{**base, **fields})


START = EventCursor()


def settle(store: PaperStore) -> None:
    """Wait (at most a minute) until the feed's bound passes every event written so far.

    On PostgreSQL the bound is the oldest transaction still running in the database, so
    another client of it holds it back for a moment, and a reader rightly
    sees nothing yet: without this wait the tests below failed whenever one was running."""
    with store.engine.connect() as conn:
        newest = conn.execute(text("SELECT max(mark) FROM paper_event")).scalar()
    deadline = time.monotonic() + 60
    while newest is not None and store.feed_bound() <= newest and time.monotonic() < deadline:
        time.sleep(0.05)


def kinds(store: PaperStore, after: EventCursor = START) -> list[tuple[str, Any, Any]]:
    settle(store)
    return [(e.kind, e.old, e.new) for e in store.events_since(after).events]


# ------------------------------------------------------------------ merges and events


def test_a_merge_records_what_changed_once(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([paper(upvotes=1, version=1)], NOW)
    assert kinds(store) == []  # a first insert is no event
    later = paper(
        upvotes=5,
        version=2,
        github_repo="https://github.com/a/b",
        github_stars=10,
        arxiv_comment="9 pages. Accepted at NeurIPS 2025",
        source="arxiv",
    )
    store.upsert_many([later], NOW + timedelta(hours=1))
    assert sorted(kinds(store)) == [
        ("code", None, "https://github.com/a/b"),
        ("stars", None, "10"),
        ("upvotes", "1", "5"),
        ("venue", None, "NeurIPS 2025"),
        ("version", "1", "2"),
    ]
    settle(store)
    page = store.events_since(EventCursor())
    assert {e.paper_id for e in page.events} == {"2606.00001"}
    assert all(e.at == NOW + timedelta(hours=1) for e in page.events)
    # The same record again changes nothing and records nothing.
    store.upsert_many([later], NOW + timedelta(hours=2))
    assert store.events_since(page.cursor).events == []
    # A reader past the first events sees only the next ones.
    store.upsert_many([paper(upvotes=7)], NOW + timedelta(hours=3))
    assert kinds(store, page.cursor) == [("upvotes", "5", "7")]


def test_learning_a_version_first_seen_without_one_is_no_new_version(engine: Engine) -> None:
    """Hugging Face lists carry no arXiv version: the first version arXiv then reports is
    not a new version (a follow-up would announce one for every paper listed on HF)."""
    store = PaperStore(engine)
    store.upsert_many([paper()], NOW)
    store.upsert_many([paper(source="arxiv", version=2)], NOW + timedelta(hours=1))
    assert kinds(store) == []
    settle(store)
    cursor = store.events_since(START).cursor
    store.upsert_many([paper(source="arxiv", version=3)], NOW + timedelta(hours=2))
    assert kinds(store, cursor) == [("version", "2", "3")]


def test_an_import_and_a_first_insert_record_no_events(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([paper(upvotes=1)], NOW, events=False)
    store.upsert_many([paper(upvotes=9, github_repo="https://github.com/a/b")], NOW, events=False)
    stored = store.get("2606.00001")
    assert stored is not None and stored.upvotes == 9 and stored.github_repo
    assert kinds(store) == []


def test_a_snapshot_import_over_stored_papers_records_no_events(
    engine: Engine, tmp_path: Path
) -> None:
    store = PaperStore(engine)
    store.upsert_many([paper("0704.0001", version=1, published_at=RECENT)], NOW)
    line = {
        "id": "0704.0001",
        "title": "Paper 0704.0001",
        "abstract": "An abstract.",
        "comments": "Accepted at ICML 2007",
        "journal-ref": "Phys.Rev.D76:013009,2007",
        "versions": [
            {"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"},
            {"version": "v2", "created": "Tue, 24 Jul 2007 20:10:27 GMT"},
        ],
    }
    path = tmp_path / "snapshot.jsonl"
    path.write_text(json.dumps(line) + "\n")
    report = import_snapshot(store, path, NOW)
    assert report.updated == 1
    stored = store.get("0704.0001")
    assert stored is not None and stored.version == 2
    assert stored.arxiv_comment == "Accepted at ICML 2007"
    assert kinds(store) == []


def test_a_source_that_knows_less_never_erases_a_known_value(engine: Engine) -> None:
    store = PaperStore(engine)
    full = paper(
        upvotes=3,
        github_repo="https://github.com/a/b",
        github_stars=40,
        project_page="https://a.github.io",
        organization="Lab",
        ai_summary="In short.",
        ai_keywords=["dpo"],
        arxiv_comment="Accepted at ICML 2026",
        journal_ref="JMLR 2026",
    )
    store.upsert_many([full], NOW)
    settle(store)
    cursor = store.events_since(EventCursor()).cursor
    store.upsert_many([paper(upvotes=4)], NOW + timedelta(hours=1))  # a list item lacking all
    stored = store.get("2606.00001")
    assert stored is not None
    assert (stored.github_repo, stored.github_stars, stored.project_page) == (
        "https://github.com/a/b",
        40,
        "https://a.github.io",
    )
    assert (stored.organization, stored.ai_summary, stored.ai_keywords) == (
        "Lab",
        "In short.",
        ["dpo"],
    )
    assert (stored.arxiv_comment, stored.journal_ref) == ("Accepted at ICML 2026", "JMLR 2026")
    assert kinds(store, cursor) == [("upvotes", "3", "4")]


def test_an_older_version_never_replaces_the_newer_comment(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many(
        [paper(version=3, arxiv_comment="Accepted at ICLR 2026", source="arxiv")], NOW
    )
    # An old snapshot line (v1) still carries the v1 comment; it may fill a missing reference.
    store.upsert_many(
        [
            paper(
                version=1,
                arxiv_comment="Submitted to ICLR 2026",
                journal_ref="ICLR 2026",
                source="arxiv",
            )
        ],
        NOW,
        events=False,
    )
    stored = store.get("2606.00001")
    assert stored is not None and stored.version == 3
    assert stored.arxiv_comment == "Accepted at ICLR 2026" and stored.journal_ref == "ICLR 2026"
    # A journal reference added later to the same version (AX-4) replaces nothing but is news.
    store.upsert_many(
        [paper(version=3, journal_ref="Proc. ICLR 2026, pp. 1-12", source="arxiv")], NOW
    )
    stored = store.get("2606.00001")
    assert stored is not None and stored.journal_ref == "Proc. ICLR 2026, pp. 1-12"


def test_a_new_venue_is_an_event_and_the_same_venue_reworded_is_not(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([paper(arxiv_comment="Submitted to NeurIPS 2025", version=1)], NOW)
    store.upsert_many([paper(arxiv_comment="Accepted at NeurIPS 2025", version=2)], NOW)
    settle(store)
    cursor = store.events_since(EventCursor()).cursor
    assert ("venue", None, "NeurIPS 2025") in kinds(store)
    store.upsert_many([paper(arxiv_comment="NeurIPS 2025 camera-ready", version=3)], NOW)
    assert kinds(store, cursor) == [("version", "2", "3")]


def test_events_come_in_pages_and_a_caught_up_reader_reads_nothing(engine: Engine) -> None:
    store = PaperStore(engine)
    ids = [f"2606.{n:05d}" for n in range(1, 6)]
    store.upsert_many([paper(pid, upvotes=0) for pid in ids], NOW)
    for n, pid in enumerate(ids, 1):  # five transactions, one event each
        store.upsert_many([paper(pid, upvotes=n)], NOW)
    seen: list[str] = []
    cursor = EventCursor()
    for _ in range(3):
        settle(store)
        page = store.events_since(cursor, limit=2)
        seen += [e.paper_id for e in page.events]
        cursor = page.cursor
    assert seen == ids  # commit order
    assert store.events_since(cursor).events == []


async def test_a_refresh_forgets_events_older_than_sixty_days(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([paper(upvotes=1)], NOW)
    store.upsert_many([paper(upvotes=2)], NOW - timedelta(days=61))  # an old event
    store.upsert_many([paper(upvotes=3)], NOW - timedelta(days=59))
    server = Server()
    server.daily({})
    await sources(server).refresh(store, NOW, source="hf")
    assert kinds(store) == [("upvotes", "2", "3")]


@pytest.mark.postgres
def test_an_event_committed_late_is_never_skipped(pg_engine: Engine) -> None:
    """A transaction that started writing first and commits last: its event must still be
    read, after the ones committed meanwhile (as the index's change feed)."""
    store = PaperStore(pg_engine)
    store.upsert_many([paper("2606.00001", upvotes=0), paper("2606.00002", upvotes=0)], NOW)
    settle(store)
    cursor = store.events_since(EventCursor()).cursor
    with pg_engine.connect() as slow:  # closed (rolled back) even if an assert fails
        trans = slow.begin()
        mark = slow.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
        slow.execute(
            text(
                "INSERT INTO paper_event (paper_id, kind, old, new, at, mark) "
                "VALUES ('2606.00001', 'upvotes', '0', '1', :at, :mark)"
            ),
            {"at": NOW, "mark": mark},
        )
        store.upsert_many([paper("2606.00002", upvotes=5)], NOW)  # commits first
        page = store.events_since(cursor)
        assert page.events == []  # not yet: the slow one could still commit below it
        trans.commit()
    settle(store)
    page = store.events_since(page.cursor)
    assert [(e.paper_id, e.new) for e in page.events] == [("2606.00001", "1"), ("2606.00002", "5")]


# ------------------------------------------------------------------ refresh: Hugging Face


def hf_detail(pid: str, stars: int) -> dict[str, Any]:
    item = hf_item(int(pid.split(".")[1]), upvotes=7)["paper"]
    return {**item, "githubRepo": "https://github.com/lab/code", "githubStars": stars}


async def test_hf_rechecks_recent_papers_a_few_per_refresh(engine: Engine) -> None:
    store = PaperStore(engine)
    recent = [paper("2606.00001"), paper("2606.00002")]
    old = paper("2604.00003", published_at=datetime(2026, 4, 1, tzinfo=UTC))
    store.upsert_many([*recent, old], NOW - timedelta(days=1))
    server = Server()
    server.daily({})
    server.routes["hf.test/api/papers/2606.00001"] = lambda _r: httpx.Response(
        200, json=hf_detail("2606.00001", 12)
    )
    src = sources(server, recheck_papers=1)
    bound = store.feed_bound()

    def asked() -> list[str]:
        return [r.url.path for r in server.requests if r.url.path.startswith("/api/papers/")]

    await src.refresh(store, NOW, source="hf")
    assert len(asked()) == 1  # the bound
    await src.refresh(store, NOW + timedelta(hours=1), source="hf")
    assert sorted(asked()) == ["/api/papers/2606.00001", "/api/papers/2606.00002"]
    await src.refresh(store, NOW + timedelta(hours=2), source="hf")
    assert len(asked()) == 3  # the one asked longest ago comes round again
    assert "/api/papers/2604.00003" not in asked()  # older than recheck_days
    stored = store.get("2606.00001")
    assert stored is not None
    assert (stored.github_repo, stored.github_stars) == ("https://github.com/lab/code", 12)
    assert ("code", None, "https://github.com/lab/code") in kinds(store)
    # The change feed moved: every index reads the new values on its next catch-up.
    moved = store.changes((bound, ""), 2**62)
    assert [r["github_repo"] for r in moved if r["id"] == "2606.00001"] == [
        "https://github.com/lab/code"
    ]
    assert store.checked_at("hf", "2606.00002") is not None
    assert store.checked_at("hf", "2604.00003") is None


async def test_hf_papers_on_the_lists_just_read_are_not_asked_one_by_one(
    engine: Engine,
) -> None:
    store = PaperStore(engine)
    store.upsert_many([paper("2606.00001"), paper("2606.00002")], NOW - timedelta(days=1))
    server = Server()
    server.daily({("2026-06-12", 0): [hf_item(1, upvotes=30)]})
    src = sources(server, recheck_papers=5)
    await src.refresh(store, NOW, source="hf")
    asked = [r.url.path for r in server.requests if r.url.path.startswith("/api/papers/")]
    assert asked == ["/api/papers/2606.00002"]  # 404 here: HF does not know it
    stored = store.get("2606.00001")
    assert stored is not None and stored.upvotes == 30
    assert store.checked_at("hf", "2606.00001") is not None


def one_recheck(engine: Engine, *ids: str) -> tuple[PaperStore, Server, Any]:
    """A store with papers `ids` from yesterday, and sources whose HF rechecks one paper a
    refresh and knows 2606.00001 has code with 12 stars (no Daily Papers lists)."""
    store = PaperStore(engine)
    store.upsert_many([paper(pid) for pid in ids], NOW - timedelta(days=1))
    server = Server()
    server.daily({})
    server.routes["hf.test/api/papers/2606.00001"] = lambda _r: httpx.Response(
        200, json=hf_detail("2606.00001", 12)
    )
    return store, server, sources(server, recheck_papers=1)


async def test_answers_that_could_not_be_stored_are_asked_again_first(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store refused the refresh's write (the database down, or the process killed
    # before it): the papers asked about are not stamped as checked, so the next refresh
    # asks about them first instead of waiting for their turn to come round again.
    store, server, src = one_recheck(engine, "2606.00001", "2606.00002")
    real = store.upsert_many

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "upsert_many", down)
    report = await src.refresh(store, NOW, source="hf")
    assert report.sources["hf"].error is not None
    assert store.checked_at("hf", "2606.00001") is None
    monkeypatch.setattr(store, "upsert_many", real)
    await src.refresh(store, NOW + timedelta(hours=1), source="hf")
    asked = [r.url.path for r in server.requests if r.url.path.startswith("/api/papers/")]
    assert asked == ["/api/papers/2606.00001", "/api/papers/2606.00001"]
    stored = store.get("2606.00001")
    assert stored is not None and stored.github_stars == 12
    assert store.checked_at("hf", "2606.00001") is not None


async def test_a_database_error_stamping_rechecks_never_stops_the_other_source(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _, src = one_recheck(engine, "2606.00001")

    def locked(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("UPDATE", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "mark_checked", locked)
    report = await src.refresh(store, NOW)
    assert set(report.sources) == {"hf", "arxiv"}  # arXiv still ran
    assert report.sources["hf"].error is None  # the answers were stored
    stored = store.get("2606.00001")
    assert stored is not None and stored.github_stars == 12


async def test_a_failing_hf_recheck_keeps_the_lists(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([paper("2606.00002")], NOW - timedelta(days=1))
    server = Server()
    server.daily({("2026-06-12", 0): [hf_item(1, upvotes=30)]})
    server.body("hf.test/api/papers/2606.00002", b"down", status=503)
    report = await sources(server).refresh(store, NOW, source="hf")
    assert report.failed == [] and report.sources["hf"].added == ["2606.00001"]
    assert store.checked_at("hf", "2606.00002") is None  # not asked: first next time


# ------------------------------------------------------------------ refresh: arXiv

API_ENTRY = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom"
      xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">
  <opensearch:totalResults>1</opensearch:totalResults>
  <opensearch:startIndex>0</opensearch:startIndex>
  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>
  <entry>
    <id>http://arxiv.org/abs/2512.00009v3</id>
    <published>2025-12-01T10:00:00Z</published>
    <updated>2026-06-11T10:00:00Z</updated>
    <title>Replaced Cross-List</title>
    <summary>The abstract.</summary>
    <author><name>Ada Lovelace</name></author>
    <arxiv:comment>10 pages. Accepted at ICML 2026</arxiv:comment>
    <arxiv:journal_ref>Proceedings of the 43rd International Conference on Machine Learning,
      PMLR 300, 2026</arxiv:journal_ref>
    <arxiv:primary_category term="cs.LG"/>
  </entry>
</feed>"""


async def test_arxiv_looks_up_replaced_papers_for_their_comment_and_venue(
    engine: Engine,
) -> None:
    store = PaperStore(engine)
    store.upsert_many(
        [
            PaperIn(
                id="2512.00009",
                title="Replaced Cross-List",
                source="arxiv",
                version=2,
                published_at=datetime(2025, 12, 1, tzinfo=UTC),
            )
        ],
        NOW,
    )
    server = Server()
    fixture_feed(server, "arxiv_atom_feed.xml")
    server.body("export.test/api/query", API_ENTRY.encode())
    report = await sources(server).refresh(store, NOW, source="arxiv")
    assert report.failed == []
    lookups = [r for r in server.requests if r.url.path == "/api/query"]
    assert len(lookups) == 1  # one request, whatever the number of papers
    assert lookups[0].url.params["id_list"].split(",")[0] == "2512.00009"  # replaced first
    stored = store.get("2512.00009")
    assert stored is not None and stored.version == 3
    assert stored.arxiv_comment == "10 pages. Accepted at ICML 2026"
    assert stored.journal_ref is not None and "PMLR 300" in stored.journal_ref
    assert sorted(kinds(store)) == [("venue", None, "ICML 2026"), ("version", "2", "3")]
    assert store.checked_at("arxiv", "2512.00009") is not None


async def test_a_failing_arxiv_lookup_keeps_the_feed(engine: Engine) -> None:
    store = PaperStore(engine)
    server = Server()
    fixture_feed(server)
    store.upsert_many([paper("2606.00009", source="arxiv")], NOW - timedelta(days=1))
    server.body("export.test/api/query", b"busy", status=503)
    report = await sources(server).refresh(store, NOW, source="arxiv")
    assert report.failed == [] and sorted(report.sources["arxiv"].added) == [
        "2606.00001",
        "2606.00003",
    ]
    assert store.checked_at("arxiv", "2606.00009") is None


def test_a_store_from_before_paper_events_is_upgraded_and_records_them(engine: Engine) -> None:
    """An existing database without the comment, journal reference and checked-at columns,
    nor the event table, gets them on start; its stored papers then merge with events."""
    from bot.db import make_engine

    PaperStore(engine).upsert_many([paper(source="arxiv", version=1)], NOW)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE paper_event"))
        for column in ("arxiv_comment", "journal_ref", "hf_checked_at", "arxiv_checked_at"):
            conn.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
    upgraded = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        store = PaperStore(upgraded)
        store.upsert_many(
            [paper(source="arxiv", version=2, arxiv_comment="Accepted at ICML 2026")],
            NOW + timedelta(hours=1),
        )
        assert sorted(kinds(store)) == [("venue", None, "ICML 2026"), ("version", "1", "2")]
        assert store.recheck_candidates("arxiv", RECENT - timedelta(days=3), 5) == ["2606.00001"]
        store.mark_checked("arxiv", ["2606.00001"], NOW)
        assert store.checked_at("arxiv", "2606.00001") == NOW
    finally:
        upgraded.dispose()
