"""Query limits and a fuzz of `BotService.handle`: whatever is typed, the answer is a short
explanation or a result, never "something went wrong" and never a crash."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bot import cli, search
from bot.config import Settings
from bot.db import make_engine
from bot.index import PaperIndex
from bot.messages import ChannelRef, Invocation, Reply, ReplyKind, UserRef
from bot.service import BotService
from bot.store import PaperStore
from tests.conftest import NOW
from tests.test_commands import PAPERS

ROOT = Path(__file__).resolve().parents[1]
CHAN = ChannelRef("slack", "T1", "C1")
OOPS = "something went wrong"


@pytest.fixture
def service(tmp_path: Path) -> BotService:
    store = PaperStore(
        make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), PaperIndex(tmp_path / "index")
    )
    store.upsert_many(PAPERS, NOW)
    return BotService(Settings.load(None, {}), store, clock=lambda: NOW)


def ask(service: BotService, text: str) -> Reply:
    inv = Invocation(text, CHAN, UserRef("slack", "U1"))
    return asyncio.run(service.ask(inv))


@pytest.mark.parametrize(
    ("text", "explains", "example"),
    [
        ("dpo until:9999-12", "2999", "until:2024-06-01"),
        ("dpo until:9999-12-31", "2999", "until:2024-06-01"),
        ("dpo since:0001-01-01", "1900", "since:2024-06-01"),
        ("(" * 500 + "dpo", "nest at most", "(dpo OR rlhf) alignment"),
        ("((((( dpo )))))", "nest at most", "(dpo OR rlhf) alignment"),
    ],
)
def test_limits_are_explained_with_an_example(
    service: BotService, text: str, explains: str, example: str
) -> None:
    reply = ask(service, text)
    assert reply.kind is ReplyKind.ERROR
    shown = reply.title + " " + reply.text
    assert OOPS not in shown.lower()
    assert explains in shown and example in shown


def test_four_levels_of_groups_still_search(service: BotService) -> None:
    reply = ask(service, "((((direct preference))))")
    assert reply.kind is ReplyKind.RESULTS
    assert reply.cards[0].id == "2305.18290"


def test_too_many_terms_are_cut_and_the_answer_says_so(service: BotService) -> None:
    words = " ".join(f"w{n}" for n in range(search.MAX_TERMS + 10))
    reply = ask(service, f"dpo OR {words}")
    shown = reply.title + reply.text + reply.footer
    assert f"cut to {search.MAX_TERMS} terms" in shown


def test_cli_search_limit_is_validated(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    for bad in ("1000000000", "-5", "0", "ten"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["search", "--limit", bad, "dpo"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--limit" in err and "e.g. 20" in err
        assert "Traceback" not in err


def test_a_huge_result_limit_does_not_abort_the_process(tmp_path: Path) -> None:
    # tantivy allocates room for `limit` hits up front: 10**9 aborted the whole process.
    code = (
        "from datetime import UTC, datetime\n"
        "from bot.db import make_engine\nfrom bot.store import PaperStore\n"
        "from bot import search\nfrom tests.test_commands import PAPERS\n"
        "now = datetime.now(UTC)\n"
        f"s = PaperStore(make_engine('sqlite:///{tmp_path / 'db.sqlite'}'))\n"
        "s.upsert_many(PAPERS, now)\n"
        "hits = search.search_papers(s, search.parse_query('preference', now), 10**9, now)\n"
        "print(len(hits))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) >= 1


# ----------------------------------------------------------------------------- the fuzz

PIECES = [
    "(",
    ")",
    '"',
    "-",
    "OR",
    "AND",
    "NOT",
    "*",
    ":",
    "\\",
    "'",
    ";",
    "--",
    "/*",
    "since:",
    "until:",
    "since:9999-12",
    "until:9999-12-31",
    "since:99999y",
    "until:0000",
    "since:2024-02-30",
    "until:7d",
    "author:",
    'author:"',
    "cat:",
    "cat:cs.CL",
    "cat:!!",
    "upvotes:",
    "upvotes:>=99999999999",
    "upvotes:<0",
    "sort:",
    "sort:new",
    "sort:zz",
    "dpo",
    "rlhf",
    "gpt-4",
    "Ω",
    "²",
    "1",
    "🦜",
    "\x00",
    "\u202e",
    "<!channel>",
    "@everyone",
    "2305.18290",
    "https://arxiv.org/abs/2305.18290",
    "hep-th/9901001",
    "arXiv:9999.99999",
]
COMMANDS = [
    "",
    "search ",
    "top ",
    "top week ",
    "top year ",
    "paper ",
    "subscribe ",
    "unsubscribe ",
    "list ",
    "schedule ",
    "schedule daily 25:99 ",
    "schedule weekdays 09:00 Mars/Olympus ",
    "digest ",
    "digest preview ",
    "help ",
    "status ",
    "digest post ",
    "digest max ",
    "catchup ",
    "like ",
    "like 2305.18290 ",
    "watch ",
    "watches ",
    "unwatch ",
    "taste ",
    "taste reset ",
    "followups ",
]
fuzz_text = st.builds(
    lambda command, parts: command + " ".join(parts),
    st.sampled_from(COMMANDS),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=30),
) | st.text(max_size=600)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=fuzz_text)
def test_handle_answers_anything_without_an_internal_error(
    service: BotService, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        reply = ask(service, text)
    assert isinstance(reply, Reply)
    assert OOPS not in reply.title.lower(), (text, caplog.text[-3000:])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]
