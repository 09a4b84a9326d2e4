"""`paperboy search`, `reindex`, `fetch` and `import`: the commands that work on the store."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gzip
import json
import os
import sys
import zipfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.errors import IndexDamaged, QueryError


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from bot import search
    from bot.runtime import open_store

    now = datetime.now(UTC)
    text = " ".join(args.query)
    try:
        query = search.parse_query(text, now)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with closing(open_store(settings)) as store:
        try:
            hits = (
                search.search_papers(store, query, args.limit, now) if not query.is_empty() else []
            )
        except IndexDamaged as exc:
            print(f"error: {exc}; run `paperboy reindex` to rebuild it", file=sys.stderr)
            return 1
        empty = store.count() == 0
    if args.json:
        rows = [
            {
                "id": hit.paper.id,
                "title": hit.paper.title,
                "score": round(hit.score, 4),
                "partial": hit.partial,  # matches some of the words: ranked after the rest
                "authors": hit.paper.authors,
                "published": hit.paper.published_at.date().isoformat()
                if hit.paper.published_at
                else None,
                "upvotes": hit.paper.upvotes,
                "url": f"https://arxiv.org/abs/{hit.paper.id}",
            }
            for hit in hits
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("the store is empty: run `paperboy fetch`" if empty else "no papers match")
    for n, hit in enumerate(hits, 1):
        if hit.partial and (n == 1 or not hits[n - 2].partial):
            print("-- also papers matching some of your words:")
        print(f"{n:>2}. {hit.paper.title}  [{hit.paper.id}]  {_rank_of(hit, query.sort)}")
    return 0


def _rank_of(hit: Any, sort: Any) -> str:
    """What the order is by: a date for sort:new, upvotes for sort:top (their scores are
    a timestamp and a count, meaningless as "score"), the relevance score otherwise."""
    from bot.search import Sort

    paper = hit.paper
    if sort is Sort.NEW:
        return paper.published_at.date().isoformat() if paper.published_at else "no date"
    if sort is Sort.TOP:
        return f"▲ {paper.upvotes}"
    return f"score {hit.score:.3f}"


def cmd_reindex(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.runtime import open_store

    with closing(open_store(settings)) as store:
        total = store.count()
        # The rebuild runs in a thread; this one reports how far the index has got (it counts
        # committed documents, so the figure moves in the index's commit steps).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            job = pool.submit(store.sync_index, rebuild=True)
            while True:
                try:
                    count = job.result(timeout=1.0)
                    break
                except concurrent.futures.TimeoutError:
                    done = store.index.doc_count() if store.index is not None else 0
                    progress(f"reindex: {done:,} of {total:,} papers")
                except ValueError as exc:
                    if "LockBusy" not in str(exc):
                        raise
                    # tantivy allows one writer per index directory; a running bot holds it.
                    print(
                        f"error: the search index in {settings.data_dir} is in use by another "
                        "paperboy process (`paperboy run`?): stop it and run `paperboy reindex` "
                        "again",
                        file=sys.stderr,
                    )
                    return 1
        progress(f"reindex: {count:,} of {total:,} papers; optimizing", end=True)
        if store.index is not None:
            store.index.optimize()
    print(f"search index rebuilt: {count:,} papers")
    return 0


def progress(text: str, *, end: bool = False) -> None:
    """A progress line on stderr: redrawn in place on a terminal, one line each otherwise."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{text}" + ("\n" if end else ""))
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _uncompressed(path: Path, workdir: Path) -> Path:
    """The JSON Lines file to import: `path` itself, or for Kaggle's .zip (or a .gz) its
    content, unpacked once into the data directory. The import resumes by byte offset, which
    needs a plain file; the unpacked copy stays until the import has finished."""
    suffix = path.suffix.lower()
    if suffix not in (".gz", ".zip"):
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / (path.stem if suffix == ".gz" else path.stem + ".json")
    stamp = f"{path.resolve()} {path.stat().st_size} {path.stat().st_mtime_ns}"
    marker = target.with_name(target.name + ".from")
    if target.exists() and marker.exists() and marker.read_text() == stamp:
        return target  # unpacked by an earlier run: resume on it
    partial = target.with_name(target.name + ".partial")
    with contextlib.ExitStack() as stack:
        if suffix == ".gz":
            source: Any = stack.enter_context(gzip.open(path, "rb"))
        else:
            archive = stack.enter_context(zipfile.ZipFile(path))
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise ValueError(
                    f"expected one file in the archive, found {len(members)}: "
                    "unpack it and import the JSON Lines file"
                )
            source = stack.enter_context(archive.open(members[0]))
        out = stack.enter_context(open(partial, "wb"))
        copied = 0
        while block := source.read(1 << 20):
            out.write(block)
            copied += len(block)
            if copied % (256 << 20) < (1 << 20):
                progress(f"unpacking {path.name}: {copied >> 20:,} MB")
    os.replace(partial, target)
    marker.write_text(stamp)
    progress(f"unpacked {path.name} into {target}", end=True)
    return target


def cmd_fetch(settings: Settings, args: argparse.Namespace) -> int:
    """Fetch once; print what each source added and updated. Exit 1 if a source failed."""
    from bot.runtime import open_store
    from bot.sources import Sources, make_client

    store = open_store(settings)

    async def fetch() -> Any:
        async with make_client(settings.sources.timeout_seconds) as client:
            return await Sources(settings, client).refresh(
                store,
                datetime.now(UTC),
                source=args.source,
                day=args.date,
                since=args.since,
                # Progress is for a person; JSON logs on stderr stay one object per line.
                progress=progress if settings.logging.format == "text" else None,
            )

    with closing(store):
        report = asyncio.run(fetch())
    # One line per source; a failure in the source's own plain words, once.
    for name, result in report.sources.items():
        if result.error:
            print(f"{name}: FAILED: {result.error.removeprefix(name + ': ')}")
        else:
            print(result.line())
    if not report.sources:
        print("no source enabled")
    return 1 if report.failed else 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Stream a snapshot into the store (and index); run again to resume after a stop."""
    from bot.runtime import open_store
    from bot.sources import ProgressBar, import_snapshot

    if not args.file.is_file():
        print(f"error: {args.file} is not a file", file=sys.stderr)
        return 2
    try:
        source = _uncompressed(args.file, settings.data_dir / "imports")
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    with closing(open_store(settings)) as store:
        report = import_snapshot(
            store, source, datetime.now(UTC), limit=args.limit, progress=ProgressBar()
        )
    print(report.summary())
    if report.lines and report.skipped * 2 > report.lines:
        print(
            f"error: {report.skipped:,} of {report.lines:,} lines were not arXiv snapshot "
            "records: is this the Kaggle arxiv-metadata-oai-snapshot file?",
            file=sys.stderr,
        )
        return 1
    return 0
