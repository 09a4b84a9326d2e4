"""One bad record never stops a source: through the refresh path and `paperboy import`, on
SQLite and on the real PostgreSQL.

The records are what hostile or broken upstream data looks like: a NUL byte (PostgreSQL refuses
it in text), `upvotes: 1e20` (past any integer column), `v99999999999999999999`, a 90-character
old-style id (past the id column on PostgreSQL; SQLite would take it), lone surrogates and
megabyte strings. What a user sees is checked: the store's contents, the `/papers status` text,
the refresh summary and the import's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import Engine

import bot.store as store_module
from bot.cli import main
from bot.config import Settings
from bot.index import open_index
from bot.messages import ChannelRef, Invocation, UserRef
from bot.models import PaperIn
from bot.paper_in import INT_MAX, MAX_ABSTRACT, MAX_TITLE
from bot.search import parse_query, search_papers
from bot.service import BotService
from bot.sources.refresh import Sources
from bot.sources.snapshot import import_snapshot
from bot.store import PaperStore
from tests.conftest import FIXTURES

NOW = datetime(2026, 6, 12, 12, 0, tzinfo=UTC)
LONG_ID = "a" * 82 + "/9901001"  # matches the old-style id pattern; 90 characters
FEED = (FIXTURES / "sources" / "arxiv_rss.xml").read_bytes()


@pytest.fixture
def any_store(engine: Engine, tmp_path: Path) -> Iterator[PaperStore]:
    index = open_index(tmp_path / "index")
    yield PaperStore(engine, index=index)
    index.close()


def hf_item(pid: str, title: str, **paper: Any) -> dict[str, Any]:
    return {
        "paper": {
            "id": pid,
            "authors": [{"name": "Ada Lovelace"}],
            "publishedAt": "2026-06-10T00:00:00.000Z",
            "submittedOnDailyAt": "2026-06-12T00:00:00.000Z",
            "title": title,
            "summary": f"Abstract of {title}, long enough to be the whole abstract.",
            "upvotes": 3,
            **paper,
        },
        "numComments": 0,
    }


def hostile_day() -> bytes:
    items = [
        hf_item("2606.00101", "A perfectly ordinary paper"),
        hf_item(
            "2606.00102",
            "Nul\x00 in the title",
            summary="abs\x00tract",
            authors=[{"name": "Bob\x00 Smith"}],
        ),
        hf_item("2606.00103", "Upvotes past any column", upvotes=1e20, githubStars=10**30),
        hf_item(LONG_ID, "An id longer than the id column"),
        hf_item("2606.00104", "Huge " + "x" * 200_000, summary="y" * 2_000_000),
        hf_item("2606.00105", "Lone surrogate \ud800 here", ai_summary="tl;dr \udfff"),
        hf_item("2606.00106", "Control\x07 characters\x1b[31m"),
        hf_item("2606.00107v99999999999999999999", "An absurd version"),
        hf_item("2606.00\x00108", "A NUL inside the id: no arXiv id at all"),
        hf_item("2606.00109", "Withdrawn on purpose", withdrawnAt="2026-06-11T00:00:00Z"),
    ]
    body = json.dumps(items)  # ensure_ascii: the NUL and surrogates go out as \\u escapes
    return body.replace('"upvotes": 1e+20', '"upvotes": 1e20').encode()


def sources_for(hf_body: bytes) -> Sources:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "hf.test":
            page = request.url.params.get("p", "0")
            return httpx.Response(200, content=hf_body if page == "0" else b"[]")
        if request.url.host == "rss.test":
            return httpx.Response(200, content=FEED)
        return httpx.Response(404)

    settings = Settings.model_validate(
        {
            "sources": {
                "huggingface": {"base_url": "http://hf.test", "refresh_days": 0},
                "arxiv": {
                    "api_url": "http://export.test/api/query",
                    "feed_url": "http://rss.test/atom",
                    "categories": ["cs.CL", "cs.LG"],
                },
                "retries": 1,
            }
        }
    )

    async def no_sleep(_s: float) -> None:
        return None

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Sources(settings, client, sleep=no_sleep, clock=lambda: 0.0, rng=lambda: 0.0)


async def status_text(store: PaperStore) -> str:
    service = BotService(Settings.load(None, {}), store, clock=lambda: NOW)
    reply = await service.ask(
        Invocation("status", ChannelRef("slack", "T1", "C1"), UserRef("slack", "U1"))
    )
    return f"{reply.title}\n{reply.text}"


async def test_refresh_stores_the_good_and_the_cleaned_and_skips_only_the_unstorable(
    any_store: PaperStore,
) -> None:
    report = await sources_for(hostile_day()).refresh(any_store, NOW)

    hf = report.sources["hf"]
    assert hf.error is None and report.failed == []
    # Two skipped: the id too long for the column, and the id the parser could not read (the
    # withdrawn paper is left out on purpose and not counted).
    assert "2 skipped" in hf.line() and LONG_ID[:40] in hf.line()
    # Cleaned, not dropped: every other record is in the store with safe values.
    assert any_store.get(LONG_ID) is None
    nul = any_store.get("2606.00102")
    assert nul is not None
    assert (nul.title, nul.abstract, nul.authors) == ("Nul in the title", "abstract", ["Bob Smith"])
    big = any_store.get("2606.00103")
    assert big is not None and big.upvotes == INT_MAX and big.github_stars == INT_MAX
    huge = any_store.get("2606.00104")
    assert huge is not None
    assert len(huge.title) == MAX_TITLE and len(huge.abstract) == MAX_ABSTRACT
    surrogate = any_store.get("2606.00105")
    assert surrogate is not None
    assert surrogate.title == "Lone surrogate here" and surrogate.ai_summary == "tl;dr"
    control = any_store.get("2606.00106")
    assert control is not None and control.title == "Control characters[31m"
    absurd = any_store.get("2606.00107")
    assert absurd is not None and absurd.version is None  # unknown, not a clamped lie
    # Searchable like any other paper.
    hits = search_papers(any_store, parse_query('"Nul in the title"', NOW), 5, NOW)
    assert [h.paper.id for h in hits] == ["2606.00102"]

    # The other source still ran.
    arxiv = report.sources["arxiv"]
    assert arxiv.error is None and arxiv.added

    text = await status_text(any_store)
    hf_line = next(line for line in text.splitlines() if line.startswith("hf"))
    assert "2 items skipped in the last fetch" in hf_line and LONG_ID[:40] in hf_line
    assert "no arXiv id" in hf_line and "withdrawn" not in hf_line.lower()
    assert "FAILING" not in text
    # The feed fixture has one item without an id: counted too, and arXiv is not failing.
    arxiv_line = next(line for line in text.splitlines() if line.startswith("arxiv"))
    assert "1 item skipped in the last fetch" in arxiv_line and "FAILING" not in arxiv_line

    # A clean fetch afterwards clears the note.
    await sources_for(
        json.dumps([hf_item("2606.00101", "A perfectly ordinary paper")]).encode()
    ).refresh(any_store, NOW, source="hf")
    text = await status_text(any_store)
    assert "skipped" not in next(line for line in text.splitlines() if line.startswith("hf"))


async def test_a_record_the_database_refuses_costs_only_itself(
    any_store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the cleaning gate the database itself refuses the bad record (NUL on
    PostgreSQL, an integer past 2**63 on SQLite): the batch is retried paper by paper."""
    monkeypatch.setattr(store_module, "clean_paper", lambda paper: paper)
    bad = PaperIn(id="2606.00999", title="Refused\x00", source="hf", upvotes=10**20)
    good = [PaperIn(id=f"2606.{n:05d}", title=f"Good paper {n}", source="hf") for n in range(5)]
    result = any_store.upsert_many([good[0], good[1], bad, *good[2:]], NOW)
    assert sorted(result.added) == sorted(p.id for p in good)
    assert [r.id for r in result.skipped] == ["2606.00999"]
    assert "the database refused it" in result.skipped[0].reason
    assert any_store.count() == 5 and any_store.get("2606.00999") is None


def test_a_date_out_of_any_range_is_dropped_and_the_paper_stored(any_store: PaperStore) -> None:
    """A source's absurd publication date (year 9999 at UTC-5 is past `datetime.max` in UTC;
    year 1 at UTC+5 before `datetime.min`) is unknown, not fatal: it used to raise
    OverflowError out of the gate and fail the whole refresh, or cost the paper itself."""
    minus5, plus5 = timezone(timedelta(hours=-5)), timezone(timedelta(hours=5))
    whens = [
        datetime(9999, 12, 31, 23, 59, tzinfo=minus5),
        datetime(1, 1, 1, tzinfo=plus5),
        datetime.max.replace(tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
    ]
    papers = [
        PaperIn(id=f"2606.{n:05d}", title=f"Paper {n}", source="hf", published_at=when)
        for n, when in enumerate(whens)
    ]
    papers.append(
        PaperIn(
            id="2606.00009",
            title="Dated",
            source="hf",
            published_at=datetime(2026, 6, 1, 5, tzinfo=plus5),
        )
    )
    result = any_store.upsert_many(papers, NOW)
    assert result.skipped == []
    assert sorted(result.added) == sorted(p.id for p in papers)
    for paper in papers[:4]:
        stored = any_store.get(paper.id)
        assert stored is not None and stored.published_at is None
    dated = any_store.get("2606.00009")
    assert dated is not None and dated.published_at is not None
    assert dated.published_at.replace(tzinfo=UTC) == datetime(2026, 6, 1, 0, tzinfo=UTC)


# ------------------------------------------------------------------ import


def snapshot_line(pid: str, title: str, **extra: Any) -> str:
    record = {
        "id": pid,
        "authors": "A. Author",
        "title": title,
        "categories": "cs.CL",
        "abstract": "An abstract.",
        "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
        "update_date": "2008-11-26",
        "authors_parsed": [["Author", "A.", ""]],
        **extra,
    }
    return json.dumps(record)


def hostile_snapshot(path: Path) -> Path:
    lines = [
        snapshot_line("0704.0001", "First good paper"),  # 1
        snapshot_line(LONG_ID, "An id longer than the column"),  # 2: refused by the store
        "{not json",  # 3: refused by the parser
        "",  # 4: blank, not a record
        snapshot_line("0704.0002", "Nul\x00 title", abstract="a\x00b"),  # 5: cleaned
        snapshot_line(
            "0704.0003",
            "Absurd version",
            versions=[
                {"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"},
                {"version": "v99999999999999999999", "created": "x"},
            ],
        ),  # 6
        snapshot_line("0704.0004", "Last good paper"),  # 7
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_skips_bad_lines_by_number_and_resumes_past_them(
    any_store: PaperStore, tmp_path: Path
) -> None:
    path = hostile_snapshot(tmp_path / "snap.jsonl")
    first = import_snapshot(any_store, path, NOW, chunk=2, limit=3)
    assert first.skipped_lines == [2, 3] and not first.finished
    assert "skipped lines: 2, 3" in first.summary()
    # The resume starts after line 3 and never retries lines 2-3, and numbers stay absolute.
    second = import_snapshot(any_store, path, NOW, chunk=2)
    assert second.finished and second.skipped_lines == []
    assert second.added == 3
    assert {
        p.id for p in any_store.get_many(["0704.0001", "0704.0002", "0704.0003", "0704.0004"])
    } == {"0704.0001", "0704.0002", "0704.0003", "0704.0004"}
    nul = any_store.get("0704.0002")
    assert nul is not None and (nul.title, nul.abstract) == ("Nul title", "ab")
    absurd = any_store.get("0704.0003")
    assert absurd is not None and absurd.version is None  # unknown, not a clamped lie


async def test_import_reports_skipped_lines_in_one_run(
    any_store: PaperStore, tmp_path: Path
) -> None:
    path = hostile_snapshot(tmp_path / "snap.jsonl")
    report = import_snapshot(any_store, path, NOW, chunk=100)
    assert report.finished and report.skipped == 2 and report.skipped_lines == [2, 3]
    assert report.added == 4 and any_store.count() == 4
    text = await status_text(any_store)
    line = next(row for row in text.splitlines() if row.startswith("snapshot:"))
    assert "2 items skipped in the last fetch" in line and "line 2; line 3" in line


@pytest.mark.postgres
def test_paperboy_import_on_postgresql_prints_the_skipped_lines(
    pg_engine: Engine, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole CLI, against PostgreSQL: a NUL byte and a 90-character id in the file."""
    cfg = tmp_path / "paperboy.toml"
    cfg.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[database]\nurl = "{pg_url}"\n',
        encoding="utf-8",
    )
    path = hostile_snapshot(tmp_path / "snap.jsonl")
    assert main(["--config", str(cfg), "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert "4 added" in out and "2 skipped" in out
    assert "skipped lines: 2, 3 (the log says why)" in out
    store = PaperStore(pg_engine)
    paper = store.get("0704.0002")
    assert paper is not None and paper.title == "Nul title"
    assert store.get(LONG_ID) is None


def test_a_store_made_before_the_skip_columns_gets_them(tmp_path: Path) -> None:
    """Upgrading keeps the old database: the columns added since are added at start."""
    from sqlalchemy import create_engine, text

    from bot.db import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE source_state (source VARCHAR(64) PRIMARY KEY,"
                " last_success_at DATETIME, last_error_at DATETIME, last_error VARCHAR,"
                " consecutive_failures INTEGER NOT NULL, cursor VARCHAR,"
                " papers_added INTEGER NOT NULL, newest_paper_at DATETIME)"
            )
        )
        conn.execute(
            text("INSERT INTO source_state VALUES ('hf', NULL, NULL, NULL, 0, NULL, 7, NULL)")
        )
    old.dispose()
    store = PaperStore(make_engine(url))
    store.record_source_success("hf", NOW, skipped=["x: bad"])
    (state,) = store.source_states()
    assert (state.papers_added, state.items_skipped, state.skipped_note) == (7, 1, "x: bad")
    store.engine.dispose()


@given(st.text(alphabet=st.characters(exclude_categories=())))  # surrogates too
def test_the_ascii_fast_path_finds_what_the_regex_finds(text: str) -> None:
    from bot.paper_in import _BAD, _has_bad, clean_text

    assert _has_bad(text) == (_BAD.search(text) is not None)
    cleaned = clean_text(text, 10_000)
    assert not _has_bad(cleaned) and "\x00" not in cleaned


async def test_a_database_failure_storing_one_source_still_lets_the_other_run(
    any_store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    real = any_store.upsert_many
    calls: list[str] = []

    def flaky(papers: list[PaperIn], now: datetime) -> Any:
        calls.append(papers[0].source)
        if papers[0].source == "hf":
            raise OperationalError("INSERT", {}, Exception("the database went away"))
        return real(papers, now)

    monkeypatch.setattr(any_store, "upsert_many", flaky)
    report = await sources_for(hostile_day()).refresh(any_store, NOW)
    assert calls == ["hf", "arxiv"]
    assert "could not store its papers" in (report.sources["hf"].error or "")
    assert report.sources["arxiv"].error is None and report.sources["arxiv"].added
    text = await status_text(any_store)
    assert "FAILING" in next(row for row in text.splitlines() if row.startswith("hf"))


@pytest.mark.postgres
def test_a_postgresql_store_made_before_the_skip_columns_gets_them(
    pg_engine: Engine, pg_url: str
) -> None:
    from sqlalchemy import text

    from bot.db import make_engine

    with pg_engine.begin() as conn:
        conn.execute(
            text("ALTER TABLE source_state DROP COLUMN items_skipped, DROP COLUMN skipped_note")
        )
        conn.execute(
            text(
                "INSERT INTO source_state (source, consecutive_failures,"
                " papers_added) VALUES ('hf', 0, 7)"
            )
        )
    upgraded = make_engine(pg_url)
    store = PaperStore(upgraded)
    store.record_source_success("hf", NOW, skipped=["x: bad"])
    (state,) = store.source_states()
    assert (state.papers_added, state.items_skipped, state.skipped_note) == (7, 1, "x: bad")
    upgraded.dispose()


async def test_an_unforeseen_parser_error_fails_that_source_only(
    any_store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = sources_for(hostile_day())

    async def broken(*_a: Any) -> list[PaperIn]:
        raise KeyError("paper")

    monkeypatch.setattr(src, "_fetch_hf", broken)
    report = await src.refresh(any_store, NOW)
    assert "unexpected error reading the source: KeyError('paper')" in (
        report.sources["hf"].error or ""
    )
    assert report.sources["arxiv"].error is None and report.sources["arxiv"].added


_ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)
# Characters the gate removes (NUL, BEL, C1, a surrogate) beside ones it keeps.
_MIXED = st.text(alphabet="ab \t\n\x00\x07\x85\ud800\u00e9\u00a0", max_size=6)
_TEXT = st.one_of(_ANY_TEXT, _MIXED, st.just(""), st.just("x" * 2_100))
_NUMBER = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(allow_nan=True), st.just(1e20)
)
_WHEN = st.one_of(
    st.none(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    st.datetimes(),
    st.dates(),
)
_LIST = st.one_of(
    st.lists(st.one_of(_TEXT, st.integers()), max_size=4), st.none(), _TEXT, st.just(["a"] * 51)
)
# Per field: a value a source usually sends, and the hostile values it might send instead.
_FIELDS: dict[str, tuple[Any, Any]] = {
    "title": (st.just("A clean title"), _TEXT),
    "abstract": (st.just("A clean abstract."), st.one_of(_TEXT, st.none(), st.integers())),
    "authors": (st.just(["Ada Lovelace", "Émilie du Châtelet"]), _LIST),
    "categories": (st.just(["cs.LG"]), _LIST),
    "ai_keywords": (st.just(["dpo"]), _LIST),
    "version": (st.just(2), _NUMBER),
    "upvotes": (st.just(7), _NUMBER),
    "github_stars": (st.none(), _NUMBER),
    "published_at": (st.just(datetime(2026, 6, 1, tzinfo=UTC)), _WHEN),
    "hf_daily_date": (st.none(), _WHEN),
    "github_repo": (st.none(), st.one_of(_TEXT, st.integers())),
    "organization": (st.just("ACME"), _TEXT),
}


@settings(max_examples=400)
@given(st.data())
def test_the_gate_keeps_a_record_as_is_only_when_cleaning_would_not_change_it(
    data: st.DataObject,
) -> None:
    """`clean_paper` returns an already clean record untouched (its fast path, taken for
    most imported papers): the result must be exactly what the field-by-field cleaning
    gives, whatever hostile values one or two fields hold."""
    import copy

    import bot.paper_in as gate

    hostile = data.draw(st.sets(st.sampled_from(sorted(_FIELDS)), max_size=2))
    values = {
        name: data.draw(bad if name in hostile else usual) for name, (usual, bad) in _FIELDS.items()
    }
    paper = PaperIn(id="2606.00101", source="hf", **values)
    slow_copy = copy.deepcopy(paper)
    fast = gate.clean_paper(paper)
    real = gate._clean_as_is
    gate._clean_as_is = lambda _paper: False  # type: ignore[assignment]
    try:
        slow = gate.clean_paper(slow_copy)
    finally:
        gate._clean_as_is = real
    assert fast == slow
