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
