"""PaperStore on SQLite and on the real PostgreSQL: one record per paper, merge rules, and
channels that never see each other's subscriptions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.dialects import sqlite

from bot.models import PaperIn
from bot.search import parse_query, search_papers
from bot.store import PaperStore

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes, PostgreSQL aware ones: compare as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def hf(**kw: object) -> PaperIn:
    values: dict[str, object] = {
        "id": "2305.18290",
        "title": "Direct Preference Optimization",
        "source": "hf",
        "abstract": "We introduce Direct Preference Optimization (DPO), a simple algorithm.",
        "authors": ["Rafael Rafailov", "Archit Sharma"],
        "hf_daily_date": date(2023, 5, 30),
        "upvotes": 10,
        "ai_keywords": ["dpo"],
    }
    values.update(kw)
    return PaperIn(**values)  # type: ignore[arg-type]


def arxiv(**kw: object) -> PaperIn:
    values: dict[str, object] = {
        "id": "2305.18290",
        "title": "Direct Preference Optimization",
        "source": "arxiv",
        "version": 2,
        "abstract": "We introduce Direct Preference Optimization (DPO), a simple algorithm.",
        "categories": ["cs.LG"],
        "published_at": datetime(2023, 5, 29, 17, 0, tzinfo=UTC),
    }
    values.update(kw)
    return PaperIn(**values)  # type: ignore[arg-type]


def test_one_record_per_paper_and_sources_merge(engine: Engine) -> None:
    store = PaperStore(engine)
    first = store.upsert_many([hf()], NOW)
    second = store.upsert_many([arxiv()], LATER)
    assert first.added == ["2305.18290"] and second.updated == ["2305.18290"]
    assert store.count() == 1
    paper = store.get("2305.18290")
    assert paper is not None
    assert paper.sources == ["hf", "arxiv"]
    assert paper.upvotes == 10  # arXiv knows no upvotes: kept
    assert paper.categories == ["cs.LG"]
    assert paper.version == 2
    assert paper.hf_daily_date == date(2023, 5, 30)
    assert utc(paper.published_at) == datetime(2023, 5, 29, 17, 0, tzinfo=UTC)
    assert utc(paper.first_seen_at) == NOW
    assert utc(paper.updated_at) == LATER


def test_counts_take_the_newer_value(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([hf(upvotes=10, comments=1)], NOW)
    store.upsert_many([hf(upvotes=42, comments=3)], LATER)
    paper = store.get("2305.18290")
    assert paper is not None and (paper.upvotes, paper.comments) == (42, 3)


def test_an_empty_field_never_overwrites_a_good_one(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([hf(github_repo="https://github.com/eric-mitchell/dpo")], NOW)
    store.upsert_many([hf(abstract="", authors=[], ai_keywords=[], github_repo=None)], LATER)
    paper = store.get("2305.18290")
    assert paper is not None
    assert paper.abstract.startswith("We introduce")
    assert paper.authors == ["Rafael Rafailov", "Archit Sharma"]
    assert paper.ai_keywords == ["dpo"]
    assert paper.github_repo == "https://github.com/eric-mitchell/dpo"


def test_a_teaser_does_not_replace_the_full_abstract(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([arxiv()], NOW)
    store.upsert_many([arxiv(abstract="We introduce DPO.")], LATER)
    paper = store.get("2305.18290")
    assert paper is not None and paper.abstract.startswith("We introduce Direct")


def test_versions_only_go_up_and_the_first_daily_date_stays(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([arxiv(version=3), hf()], NOW)
    store.upsert_many([arxiv(version=1), hf(hf_daily_date=date(2024, 1, 1))], LATER)
    paper = store.get("2305.18290")
    assert paper is not None
    assert paper.version == 3
    assert paper.hf_daily_date == date(2023, 5, 30)


def test_categories_are_united(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([arxiv(categories=["cs.LG"])], NOW)
    store.upsert_many([arxiv(categories=["cs.CL", "cs.LG"])], LATER)
    paper = store.get("2305.18290")
    assert paper is not None and paper.categories == ["cs.LG", "cs.CL"]


def test_same_paper_twice_in_one_batch_is_one_record(engine: Engine) -> None:
    store = PaperStore(engine)
    result = store.upsert_many([hf(upvotes=1), arxiv(), hf(upvotes=7)], NOW)
    assert result.added == ["2305.18290"]
    assert store.count() == 1
    paper = store.get("2305.18290")
    assert paper is not None and paper.upvotes == 7 and paper.version == 2


def test_unchanged_reingest_is_counted_and_keeps_updated_at(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([hf()], NOW)
    result = store.upsert_many([hf()], LATER)
    assert result.unchanged == 1 and not result.updated and not result.added
    paper = store.get("2305.18290")
    assert paper is not None and utc(paper.updated_at) == NOW


def test_get_many_keeps_the_asked_order_and_skips_missing(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([hf(id="2401.00001"), hf(id="2401.00002")], NOW)
    assert [p.id for p in store.get_many(["2401.00002", "9999.99999", "2401.00001"])] == [
        "2401.00002",
        "2401.00001",
    ]


def test_texts_are_the_papers_words_in_the_asked_order(engine: Engine) -> None:
    # What a one-word search reads of its best matches (bot.index_feedback), on both
    # databases: title and abstract, in the asked order, unknown ids left out.
    store = PaperStore(engine)
    store.upsert_many(
        [
            hf(id="2401.00001", title="One", abstract="First."),
            hf(id="2401.00002", title="Two", abstract="Second."),
        ],
        NOW,
    )
    got = store.texts(["2401.00002", "9999.99999", "2401.00001"])
    assert [(t.title, t.abstract) for t in got] == [("Two", "Second."), ("One", "First.")]
    assert store.texts([]) == []


def settled_bound(store: PaperStore) -> int:
    """The feed's bound once it passes every paper written so far (waiting at most a
    minute): on PostgreSQL any other write open in the database holds it back."""
    import time

    from sqlalchemy import text

    with store.engine.connect() as conn:
        newest = conn.execute(text("SELECT max(change_seq) FROM paper")).scalar() or 0
    deadline = time.monotonic() + 60
    while (bound := store.feed_bound()) <= newest and time.monotonic() < deadline:
        time.sleep(0.05)
    return bound


def test_change_feed_is_in_commit_order_and_has_each_paper_once(engine: Engine) -> None:
    store = PaperStore(engine)
    # Ids deliberately out of order, and one paper changed again by a later write.
    store.upsert_many([hf(id="2401.00003"), hf(id="2401.00001")], LATER)
    store.upsert_many([hf(id="2401.00002"), hf(id="2401.00003", upvotes=99)], NOW)
    bound = settled_bound(store)
    rows = store.changes((0, ""), bound)
    assert [r["id"] for r in rows] == ["2401.00001", "2401.00002", "2401.00003"]
    assert rows[-1]["upvotes"] == 99  # the latest state, read once
    first, second = rows[0]["change_seq"], rows[-1]["change_seq"]
    assert first < second  # the second write's mark is later, whatever its clock said
    assert [r["id"] for r in store.changes((first, "2401.00001"), bound)] == [
        "2401.00002",
        "2401.00003",
    ]
    assert store.changes((bound, ""), store.feed_bound()) == []
    assert [r["id"] for r in store.changes((0, ""), bound, skip=[second])] == ["2401.00001"]


@pytest.mark.postgres
def test_a_write_left_open_in_another_database_does_not_hold_back_the_feed(
    pg_engine: Engine,
) -> None:
    """A shared server: some other application's database has a write transaction open (idle
    in transaction, for hours). Its xid is below every mark paperboy writes next; the feed's
    bound must still pass them, or new papers never reach the index."""
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_URL

    other = create_engine(PG_URL)  # the server's `test` database, not paperboy's
    with other.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE held (x int)"))  # holds an xid until rollback
        held = int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
        store = PaperStore(pg_engine)
        store.upsert_many([hf(id="2401.00001")], NOW)
        with pg_engine.connect() as mine:
            newest = int(mine.execute(text("SELECT max(change_seq) FROM paper")).scalar_one())
        assert held < newest < store.feed_bound()
        assert [r["id"] for r in store.changes((0, ""), store.feed_bound())] == ["2401.00001"]
        conn.rollback()
    other.dispose()


def test_acronyms_are_mined_at_ingest(engine: Engine) -> None:
    store = PaperStore(engine)
    store.upsert_many([hf()], NOW)
    aliases = store.aliases()
    assert "direct preference optimization" in aliases["dpo"]
    assert "dpo" in aliases["direct preference optimization"]


def test_subscriptions_belong_to_one_channel(engine: Engine) -> None:
    store = PaperStore(engine)
    a, b = "slack:T1:C1", "slack:T1:C2"
    sub, created = store.subscribe(a, "DPO  alignment", NOW, user="U1")
    assert created and sub.query == "DPO alignment"
    again, created = store.subscribe(a, "dpo alignment", NOW)
    assert not created and again.id == sub.id
    assert store.subscriptions(b) == []
    assert sub.id is not None
    assert store.unsubscribe(b, sub.id) is False  # another channel cannot remove it
    assert [s.query for s in store.subscriptions(a)] == ["DPO alignment"]
    other, created = store.subscribe(b, "dpo alignment", NOW)
    assert created and other.id != sub.id
    assert store.unsubscribe(a, sub.id) is True
    assert store.subscriptions(a) == []
    assert [s.query for s in store.subscriptions(b)] == ["dpo alignment"]


def test_channel_settings_are_per_channel(engine: Engine) -> None:
    store = PaperStore(engine)
    channel, created = store.ensure_channel("discord:G1:C1", NOW, schedule="daily")
    assert created and channel.schedule == "daily"
    store.ensure_channel("discord:G1:C2", NOW)
    store.update_channel("discord:G1:C1", digest_time="08:30")
    c1, c2 = store.channel("discord:G1:C1"), store.channel("discord:G1:C2")
    assert c1 is not None and c2 is not None
    assert (c1.digest_time, c2.digest_time) == ("08:30", "09:00")
    _, created = store.ensure_channel("discord:G1:C1", NOW)
    assert not created


def test_a_store_from_before_the_change_feed_is_upgraded_on_start(tmp_path: Path) -> None:
    import sqlite3

    from sqlalchemy.schema import CreateTable

    from bot.db import make_engine
    from bot.index import open_index
    from bot.models import Paper

    path = tmp_path / "old.db"
    ddl = str(CreateTable(Paper.__table__).compile(dialect=sqlite.dialect()))  # type: ignore[attr-defined]
    ddl = "\n".join(
        line for line in ddl.splitlines() if "announced_at" not in line and "change_seq" not in line
    )
    old = sqlite3.connect(path)
    old.execute(ddl)
    old.execute(
        "INSERT INTO paper (id, title, abstract, authors, categories, upvotes, comments, "
        "ai_keywords, sources, first_seen_at, updated_at) VALUES ('2401.00001', "
        "'Walrus from before', '', '[]', '[]', 0, 0, '[]', '[\"hf\"]', "
        "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    old.commit()
    old.close()

    store = PaperStore(make_engine(f"sqlite:///{path}"), index=open_index(tmp_path / "ix"))
    assert store.sync_index() == 1
    store.upsert_many([hf(id="2401.00002", title="Walrus after")], NOW)
    assert store.sync_index() == 0
    hits = search_papers(store, parse_query("walrus", NOW), 5, NOW)
    assert {h.paper.id for h in hits} == {"2401.00001", "2401.00002"}
    store.close()


def test_bulk_insert_stores_what_the_models_store(engine: Engine) -> None:
    """New papers are bound straight through the driver (bot.paper_rows): the stored values
    must be exactly those SQLAlchemy writes through the model, or window queries on the
    stored text (SQLite) would compare different formats."""
    from sqlalchemy import text
    from sqlmodel import Session

    from bot.models import Paper

    store = PaperStore(engine)
    berlin = datetime(2024, 1, 1, 3, 4, 5, 6, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    store.upsert_many(
        [hf(id="2401.00001", published_at=berlin, github_repo="https://github.com/a/b")], NOW
    )
    written = store.get("2401.00001")
    assert written is not None
    twin = Paper.model_validate(written.model_dump() | {"id": "2401.00002"})
    with Session(engine) as session:
        session.add(twin)
        session.commit()
        raw = {
            row[0]: row[1:]
            for row in session.execute(
                text(
                    "SELECT id, authors, categories, ai_keywords, sources, published_at, "
                    "hf_daily_date, first_seen_at, updated_at, announced_at, title, upvotes, "
                    "github_repo FROM paper"
                )
            )
        }
    assert raw["2401.00001"] == raw["2401.00002"]
    assert utc(written.published_at) == datetime(2024, 1, 1, 3, 4, 5, 6, tzinfo=UTC)
