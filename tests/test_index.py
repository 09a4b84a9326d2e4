"""The search index follows the store: rebuilt when missing or broken, caught up when stale,
one entry per paper however often it is re-ingested."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.index import STATE_FILE, PaperIndex, open_index
from bot.index_aliases import tokens_found
from bot.index_schema import _en_analyze, indexed_forms
from bot.models import PaperIn
from bot.search import parse_query, search_papers
from bot.store import PaperStore
from tests.fakes import catch_up

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def paper(pid: str, title: str, upvotes: int = 0, source: str = "test") -> PaperIn:
    return PaperIn(
        id=pid,
        title=title,
        source=source,
        abstract=f"{title}. A study.",
        authors=["Ann Author"],
        categories=["cs.CL"],
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
        upvotes=upvotes,
    )


def found(store: PaperStore, text: str) -> list[tuple[str, int]]:
    hits = search_papers(store, parse_query(text, NOW), 20, NOW)
    return [(h.paper.id, h.paper.upvotes) for h in hits]


def test_reingest_updates_upvotes_without_duplicates(store: PaperStore) -> None:
    store.upsert_many([paper("2601.00001", "Walrus tuning", upvotes=1)], NOW)
    store.upsert_many([paper("2601.00001", "Walrus tuning", upvotes=500, source="hf")], NOW)
    assert found(store, "walrus") == [("2601.00001", 500)]
    assert found(store, "walrus upvotes:>=100") == [("2601.00001", 500)]
    assert found(store, "walrus upvotes:<100") == []
    assert store.index is not None and store.index.doc_count() == 1


def test_the_same_paper_twice_before_a_commit_is_one_document(tmp_path: Path) -> None:
    index = PaperIndex(tmp_path / "ix")
    from bot.models import Paper

    def row(upvotes: int) -> Paper:
        return Paper(
            id="2601.00001",
            title="Walrus tuning",
            upvotes=upvotes,
            first_seen_at=NOW,
            updated_at=NOW + timedelta(seconds=upvotes),
        )

    index.upsert([row(1)], position=(1, "2601.00001"))
    index.upsert([row(2)], position=(2, "2601.00001"))
    assert index.doc_count() == 1
    assert index.search(parse_query("walrus upvotes:2", NOW), {}, 5, NOW)[0][0] == "2601.00001"
    assert index.position() == (2, "2601.00001")
    index.close()


def test_missing_index_is_rebuilt_from_the_store(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = open_index(path)
    store = PaperStore(sqlite_engine, index=index)
    store.upsert_many([paper("2601.00001", "Walrus tuning"), paper("2601.00002", "Seal")], NOW)
    index.close()
    shutil.rmtree(path)

    store = PaperStore(sqlite_engine, index=open_index(path))
    assert found(store, "walrus") == []  # empty until caught up
    assert store.sync_index() == 2
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_corrupt_index_is_rebuilt(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = open_index(path)
    PaperStore(sqlite_engine, index=index).upsert_many([paper("2601.00001", "Walrus")], NOW)
    index.close()
    (path / "meta.json").write_text("{ not json")

    store = PaperStore(sqlite_engine, index=open_index(path))
    assert store.index is not None and store.index.position() == (0, "")
    store.sync_index()
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_index_of_another_schema_version_is_rebuilt(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = open_index(path)
    PaperStore(sqlite_engine, index=index).upsert_many([paper("2601.00001", "Walrus")], NOW)
    index.close()
    state = json.loads((path / STATE_FILE).read_text())
    (path / STATE_FILE).write_text(json.dumps({**state, "schema": -1}))

    store = PaperStore(sqlite_engine, index=open_index(path))
    assert store.sync_index() == 1
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_index_built_with_another_acronym_list_is_rebuilt(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    # Documents carry the acronyms of the shipped list's expansions they spell out: an index
    # written with another list would miss papers, so it is rebuilt from the store.
    path = tmp_path / "index"
    index = open_index(path)
    PaperStore(sqlite_engine, index=index).upsert_many([paper("2601.00001", "Walrus")], NOW)
    index.close()
    state = json.loads((path / STATE_FILE).read_text())
    (path / STATE_FILE).write_text(json.dumps({**state, "aliases": "another list"}))

    store = PaperStore(sqlite_engine, index=open_index(path))
    assert store.sync_index() == 1
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_stale_index_catches_up_only_what_changed(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = open_index(path)
    PaperStore(sqlite_engine, index=index).upsert_many(
        [paper("2601.00001", "Walrus", upvotes=1), paper("2601.00002", "Seal")], NOW
    )
    index.close()

    # Another process writes the store while this index is closed.
    later = NOW + timedelta(hours=1)
    PaperStore(sqlite_engine).upsert_many(
        [paper("2601.00003", "Walrus again"), paper("2601.00001", "Walrus", upvotes=90)], later
    )

    store = PaperStore(sqlite_engine, index=open_index(path))
    assert store.sync_index() == 2  # the two changed papers, not all three
    assert found(store, "walrus sort:top") == [("2601.00001", 90), ("2601.00003", 0)]
    assert store.sync_index() == 0
    assert store.index is not None and store.index.doc_count() == 3


def test_feed_state_survives_a_restart(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = open_index(path)
    store = PaperStore(sqlite_engine, index=index)
    store.upsert_many([paper("2601.00009", "Seal")], NOW)
    store.sync_index()
    position = index.position()
    index.close()
    assert position[0] > 0
    reopened = PaperStore(sqlite_engine, index=open_index(path))
    assert reopened.index is not None and reopened.index.position() == position
    assert reopened.sync_index() == 0


def test_rebuild_replaces_everything(store: PaperStore) -> None:
    store.upsert_many([paper("2601.00001", "Walrus"), paper("2601.00002", "Seal")], NOW)
    assert store.sync_index(rebuild=True) == 2
    assert store.index is not None and store.index.doc_count() == 2
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_store_without_index_still_searches(sqlite_engine: Engine) -> None:
    store = PaperStore(sqlite_engine)
    store.upsert_many([paper("2601.00001", "Walrus")], NOW)
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_in_memory_index(sqlite_engine: Engine) -> None:
    store = PaperStore(sqlite_engine, index=PaperIndex(None))
    store.upsert_many([paper("2601.00001", "Walrus")], NOW)
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_upsert_is_committed_when_the_call_returns(sqlite_engine: Engine, tmp_path: Path) -> None:
    # No close(): as if the process died right after ingesting.
    path = tmp_path / "index"
    PaperStore(sqlite_engine, index=open_index(path)).upsert_many(
        [paper("2601.00009", "Seal")], NOW
    )
    # The index says it applied that write: reopened, it reads nothing again, yet finds it.
    state = json.loads((path / STATE_FILE).read_text())
    assert state["own"]
    reopened = PaperStore(sqlite_engine, index=open_index(path))
    assert reopened.sync_index() == 0
    assert found(reopened, "seal") == [("2601.00009", 0)]


def test_an_index_another_process_writes_is_searched_not_updated(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "index"
    owner = PaperStore(sqlite_engine, index=open_index(path))
    owner.upsert_many([paper("2601.00001", "Walrus")], NOW)  # holds the writer lock
    reader = PaperStore(sqlite_engine, index=open_index(path))
    reader.upsert_many([paper("2601.00002", "Walrus two")], NOW + timedelta(minutes=1))
    assert found(reader, "walrus") == [("2601.00001", 0)]
    assert owner.sync_index() == 1
    assert {pid for pid, _ in found(owner, "walrus")} == {"2601.00001", "2601.00002"}


def test_index_with_broken_segment_files_is_rebuilt(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = open_index(path)
    PaperStore(sqlite_engine, index=index).upsert_many([paper("2601.00001", "Walrus")], NOW)
    index.close()
    for file in path.iterdir():
        if file.suffix in (".idx", ".pos", ".term", ".store", ".fast", ".fieldnorm"):
            file.write_bytes(b"garbage")

    store = PaperStore(sqlite_engine, index=open_index(path))
    assert store.sync_index() == 1
    assert found(store, "walrus") == [("2601.00001", 0)]


def test_runtime_style_construction_also_rebuilds(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index"
    index = PaperIndex(path)
    PaperStore(sqlite_engine, index=index).upsert_many([paper("2601.00001", "Walrus")], NOW)
    index.close()
    (path / "meta.json").write_text("{ not json")

    store = PaperStore(sqlite_engine, index=PaperIndex(path))
    assert store.sync_index() == 1
    assert found(store, "walrus") == [("2601.00001", 0)]


@pytest.mark.postgres
def test_each_instance_index_follows_the_shared_store(pg_engine: Engine, tmp_path: Path) -> None:
    # Two instances on one PostgreSQL, each with its own index in its own data directory.
    a = PaperStore(pg_engine, index=open_index(tmp_path / "a"))
    b = PaperStore(pg_engine, index=open_index(tmp_path / "b"))
    a.upsert_many([paper("2601.00001", "Walrus")], NOW)
    assert found(b, "walrus") == []  # not yet: b has not looked at the store
    assert catch_up(b) == 1
    assert found(b, "walrus") == [("2601.00001", 0)]
    assert catch_up(b) == 0
    assert catch_up(a) == 0  # a indexed its own write as it made it
    for store in (a, b):
        store.close()


def test_a_since_window_ranks_by_relevance_not_by_age_within_it(store: PaperStore) -> None:
    # The older paper mentions "walrus" once more in its abstract (slightly better BM25);
    # the newer one is fresher. Unfiltered, freshness lifts the new paper first; given
    # `since:`, the reader already chose the period, and inside it the better match leads.
    older = paper("2502.00001", "Walrus colonies in summer")
    older.abstract = "Walrus colonies in summer. A study of where each walrus rests."
    older.published_at = datetime(2025, 2, 1, tzinfo=UTC)
    newer = paper("2606.00001", "Walrus colonies in summer")
    newer.abstract = "Walrus colonies in summer. A study of where each seal rests."
    newer.published_at = datetime(2026, 6, 14, tzinfo=UTC)
    store.upsert_many([older, newer], NOW)
    assert [pid for pid, _ in found(store, "walrus")] == ["2606.00001", "2502.00001"]
    assert [pid for pid, _ in found(store, "walrus since:2025-01-01")] == [
        "2502.00001",
        "2606.00001",
    ]


def test_acronym_automaton_finds_what_the_analysed_tokens_hold() -> None:
    # The automaton runs over lowercased text without the analyser; each field finds the same
    # acronym tokens, as often, as the analysed tokens in a row would.
    forms = indexed_forms()
    texts = [
        "Reinforcement Learning with Human Feedback (RLHF) and direct-preference\noptimization",
        "Large Vision-Language Models, large language models; a language modeling view",
        "Question-answer pairs for retrieval augmented generation, and RAG.",
        "In-context learning: chain-of-thought, chains of thought, mixture of experts",
        "Reinforcement learning for human tutors and feedback; direct preference optimizations",
        "direct preference optimization direct preference optimization",
        "Ünïcode — supervised fine-tuning… low–rank adaptation",
        "",
    ]
    for text in texts:
        found = forms.found(text)
        assert sorted(found) == sorted(tokens_found(forms, _en_analyze(text))), text
    assert forms.found(texts[5]) == ["dpo", "dpo"]
    assert "lvlm" in forms.found(texts[1]) and "rag" in forms.found(texts[2])
    # A paper's fields in one pass: each finds its own; a form never spans two fields, nor a
    # run of separators ("direct preference, optimization").
    fields = ["Direct preference", "optimization", "DPO: direct preference optimization\0x"]
    assert forms.found_each(fields) == [[], [], ["dpo"]]
    assert forms.found("direct preference, optimization") == []
