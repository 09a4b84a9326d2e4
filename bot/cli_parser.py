"""The `paperboy` command line: one small function per subcommand's arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from bot import cli_checks, cli_run, cli_store, demo

CONFIG_HELP = "TOML settings file (default: $PAPERBOY_CONFIG)"


class Subcommands:
    """Subparsers whose help page starts with the same sentence as the command list, and
    which remember their names (`names`)."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self.action = action
        self.common = common
        self.names: list[str] = []

    def add(
        self,
        name: str,
        func: Callable[..., int] | None,
        *,
        help: str,  # noqa: A002
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.action.add_parser(
            name,
            help=help,
            description=help[:1].upper() + help[1:] + ".",
            parents=[self.common],
        )
        if func is not None:  # a group (`discord`) without its action prints its help
            parser.set_defaults(func=func)
        self.names.append(name)
        return parser


def build_parser() -> tuple[argparse.ArgumentParser, Subcommands]:
    """The parser, and its subcommands (what `paperboy --help` lists)."""
    parser = argparse.ArgumentParser(
        prog="paperboy", description="Research papers in Slack, Discord and the terminal."
    )
    parser.add_argument("--version", action="version", version=f"paperboy {_version()}")
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    # `--config` is accepted after the subcommand too (`paperboy run --config x.toml`);
    # SUPPRESS keeps a value given before the subcommand when it is not repeated after.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP)
    sub = Subcommands(parser.add_subparsers(metavar="COMMAND"), common)
    sub.add("run", cli_run.cmd_run, help="run the bot (console when no platform token is set)")
    _demo(sub)
    _search(sub)
    sub.add("reindex", cli_store.cmd_reindex, help="rebuild the search index from the store")
    _discord(sub, common)
    _fetch(sub)
    _import(sub)
    _digest(sub)
    sub.add(
        "check-config",
        cli_checks.cmd_check_config,
        help="validate settings and secrets; name what is wrong",
    )
    return parser, sub


def _demo(sub: Subcommands) -> None:
    p = sub.add("demo", demo.cmd_demo, help="try paperboy offline on a bundled set of papers")
    p.add_argument(
        "--run",
        metavar="TEXT",
        action="append",
        default=[],
        help='answer TEXT (e.g. "/papers dpo") and exit; repeatable',
    )


def _search(sub: Subcommands) -> None:
    p = sub.add("search", cli_store.cmd_search, help="search the configured store")
    p.add_argument("query", nargs="+")
    p.add_argument(
        "--limit", type=result_limit, default=10, metavar="N", help="results to show (1-100)"
    )
    p.add_argument("--json", action="store_true", help="print JSON: id, title, score, ...")


def _discord(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    p = sub.add("discord", None, help="Discord operator tools")
    actions = Subcommands(p.add_subparsers(metavar="ACTION"), common)
    p = actions.add(
        "sync",
        cli_run.cmd_discord_sync,
        help="upload the /papers commands to Discord (once, after install or upgrade)",
    )
    p.add_argument(
        "--guild", type=int, metavar="ID", help="one server, instant (default: [discord] guild_id)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the JSON payload instead of uploading it"
    )


def _fetch(sub: Subcommands) -> None:
    p = sub.add(
        "fetch", cli_store.cmd_fetch, help="fetch new papers from Hugging Face and arXiv once"
    )
    p.add_argument("--source", choices=["hf", "arxiv"], help="only this source")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="one day's papers")
    when.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD", help="every day since")


def _import(sub: Subcommands) -> None:
    p = sub.add(
        "import",
        cli_store.cmd_import,
        help="import an arXiv metadata snapshot (Kaggle JSON Lines, .zip or .gz)",
    )
    p.add_argument("file", type=Path, help="arxiv-metadata-oai-snapshot.json (resumable)")
    p.add_argument(
        "--limit", type=positive_int, metavar="N", help="read at most N lines in this run"
    )


def _digest(sub: Subcommands) -> None:
    p = sub.add(
        "digest",
        cli_run.cmd_digest,
        help="build a channel's digest now and post it through the ledger (or --dry-run)",
    )
    p.add_argument(
        "--channel",
        required=True,
        metavar="KEY",
        help="platform:workspace:channel, e.g. slack:T0123:C0456 or console:local:terminal",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the digest only: nothing is posted or recorded as delivered",
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("paperboy")
    except PackageNotFoundError:
        return "unknown"


def result_limit(text: str) -> int:
    """`--limit` of `paperboy search`: a whole number within the search's result limit."""
    from bot.search import MAX_RESULTS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, e.g. 20") from None
    if not 1 <= value <= MAX_RESULTS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_RESULTS}, e.g. 20")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-06-12") from None
