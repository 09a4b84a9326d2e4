"""The README stays true: its command table matches the registry, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from bot.cli_parser import build_parser
from bot.commands import COMMANDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_registered_command_is_in_the_readme_table() -> None:
    rows = re.findall(r"^\| `/papers ([^`]*)` \|", README, flags=re.M)
    documented = {row.replace("\\|", "|") for row in rows}
    assert {spec.usage for spec in COMMANDS.values()} == documented


def test_operator_commands_in_the_readme_exist() -> None:
    documented = re.findall(r"^\| `paperboy ([a-z-]+)", README, flags=re.M)
    assert documented and set(documented) <= set(build_parser()[1].names)


def test_readme_has_exactly_the_two_setup_commands_ci_runs() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    assert len(blocks) == 2
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert blocks[1] in ci
    assert "paperboy demo" in blocks[0]


def test_the_worked_example_is_what_the_demo_answers() -> None:
    """The README's worked example (subscribe, preview, narrow, budget, list, catch-up) is the
    demo's real output: every line shown is in the answer to its command, in order."""
    from tests.test_console import run_demo

    marker = README.index("<!-- worked example:")
    block = README[marker:].split("```\n", 2)[1]
    turns = [t for t in block.split("papers> ") if t.strip()]
    commands = [t.splitlines()[0] for t in turns]
    answers = run_demo(*commands).split("papers> ")[1:]
    assert len(answers) == len(turns) >= 7
    for turn, answer in zip(turns, answers, strict=True):
        got = answer.splitlines()
        assert got[0] == turn.splitlines()[0]
        at = 0
        for line in (x for x in turn.splitlines()[1:] if x.strip() and x != "…"):
            assert line in got[at:], f"{line!r} not in the answer to {got[0]!r}:\n{answer}"
            at = got.index(line, at) + 1
