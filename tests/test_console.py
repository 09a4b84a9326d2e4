"""The console channel and `paperboy demo`, as a newcomer uses them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter, render, to_invocation
from bot.demo import load_demo_papers
from bot.messages import ChannelRef, PaperCard, Reply, ReplyKind

ROOT = Path(__file__).resolve().parents[1]
DPO_DEMO = {  # demo papers that mention DPO; the first two only spell it out
    "2503.87084",
    "2312.16968",
    "2507.97775",
    "2412.43655",
    "2501.16608",
}


def run_demo(*lines: str, env: dict[str, str] | None = None) -> str:
    args = [sys.executable, "-m", "bot", "demo"]
    for line in lines:
        args += ["--run", line]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_demo_answers_dpo_with_the_dpo_papers_first() -> None:
    out = run_demo("/papers dpo")
    assert out.startswith("papers> /papers dpo")
    titles = {p.id: p.title for p in load_demo_papers()}
    shown = [pid for pid, title in titles.items() if title in out]
    assert set(shown) == DPO_DEMO  # all five, and nothing that is not about DPO
    # The demo's ids are made up: no link to them, a title search on arXiv instead.
    assert "https://arxiv.org/abs/" not in out and "huggingface.co/papers/" not in out
    assert "https://arxiv.org/search/?searchtype=title&query=" in out
    # Papers that only say "direct preference optimization" are found through the alias.
    assert titles["2503.87084"] in out and titles["2312.16968"] in out


def test_demo_runs_several_commands_in_one_channel() -> None:
    out = run_demo("/papers subscribe dpo", "/papers list", "/papers help")
    assert "Subscribed this channel to dpo." in out
    assert "1. dpo" in out
    assert "/papers subscribe <query>" in out


def test_demo_search_json(tmp_path: Path) -> None:
    # `paperboy search --json` on a configured store: a list with id, title and score.
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path}"\n')
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from datetime import UTC, datetime\n"
            "from bot.demo import load_demo_papers\nfrom bot.config import Settings\n"
            "from bot.runtime import open_store\n"
            f"s = open_store(Settings.load({str(cfg)!r}, {{}}))\n"
            "s.upsert_many(load_demo_papers(), datetime.now(UTC))\n",
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(cfg),
            "search",
            "--json",
            "preference",
            "optimization",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rows = json.loads(out)
    assert rows and {"id", "title", "score"} <= set(rows[0])
    # Papers with every word first, best first; then those matching some of the words.
    assert rows == sorted(rows, key=lambda r: (r["partial"], -r["score"]))


def test_to_invocation_accepts_text_with_or_without_the_command() -> None:
    assert to_invocation("/papers dpo").text == "dpo"  # type: ignore[union-attr]
    assert to_invocation("dpo").text == "dpo"  # type: ignore[union-attr]
    assert to_invocation("/papers").text == ""  # type: ignore[union-attr]
    assert to_invocation("   ") is None


def test_render_shows_title_authors_date_upvotes_and_link() -> None:
    card = PaperCard(
        id="2305.18290",
        title="Direct Preference Optimization",
        url="https://arxiv.org/abs/2305.18290",
        authors=("A", "B", "C", "D"),
        upvotes=7,
        abstract="x " * 400,
    )
    text = render(Reply(ReplyKind.RESULTS, "Papers for dpo", cards=(card,), more=3))
    assert "1. Direct Preference Optimization" in text
    assert "A, B, C et al." in text and "▲ 7" in text
    assert "https://arxiv.org/abs/2305.18290" in text
    assert "+3 more" in text
    assert max(len(line) for line in text.splitlines()) <= 100


async def test_console_send_prints_a_digest() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(service=None, stdout=out, interactive=False)  # type: ignore[arg-type]
    ref = await console.send(
        ChannelRef("console", "local", "terminal"),
        Reply(ReplyKind.DIGEST, "Your digest"),
        idempotency_key="k1",
    )
    assert ref == "k1"
    assert "Your digest" in out.getvalue()


@pytest.mark.parametrize("line", ["quit", ""])
async def test_repl_stops_on_quit_or_eof(line: str) -> None:
    console = ConsoleAdapter(service=None, stdin=io.StringIO(line), stdout=io.StringIO())  # type: ignore[arg-type]
    await console.repl()
    assert console.finished.is_set()


def test_demo_papers_are_dated_up_to_today_without_repeated_authors() -> None:
    from datetime import date

    papers = load_demo_papers(date(2031, 3, 4))
    assert max(p.hf_daily_date for p in papers if p.hf_daily_date) == date(2031, 3, 4)
    for p in papers:
        assert len(p.authors) == len(set(p.authors)), p.id


def test_every_demo_example_in_the_readme_answers() -> None:
    # The README suggests these to a newcomer: each must answer with papers, on any day.
    out = run_demo("/papers top week", "/papers dpo since:7d", "/papers rlhf")
    answers = out.split("papers> ")[1:]
    assert len(answers) == 3
    for answer in answers:
        assert "\n1. " in answer, answer
    assert "No upvoted papers" not in out
    top = answers[0]
    cards = [line for line in top.splitlines() if line[:1].isdigit() and ". " in line]
    assert cards and top.count("▲ ") == len(cards)  # every top paper has upvotes
