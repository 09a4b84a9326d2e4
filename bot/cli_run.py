"""`paperboy run`, `paperboy digest` and `paperboy discord sync`: the commands that talk to the
chat platforms."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import closing
from typing import TYPE_CHECKING

from bot.cli_checks import fail_on_problems
from bot.config import Settings, reveal
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.messages import ChannelRef
    from bot.store import PaperStore

PLATFORMS = ("slack", "discord", "console")


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.runtime import run

    fail_on_problems(settings)
    asyncio.run(run(settings))
    return 0


def cmd_discord_sync(settings: Settings, args: argparse.Namespace) -> int:
    """Command sync is deliberate: Discord rate-limits command creates, so never on start."""
    from adapters.discord_commands import command_payload, sync_commands

    guild = args.guild if args.guild is not None else settings.discord.guild_id
    if args.dry_run:
        print(json.dumps(command_payload(), indent=2, ensure_ascii=False))
        return 0
    token = reveal(settings.secrets.discord_token)
    if not token:
        raise ConfigError("DISCORD_TOKEN is not set: `paperboy discord sync` needs the bot token")
    names = asyncio.run(sync_commands(token, guild))
    where = f"server {guild} (available now)" if guild else "all servers (may take a moment)"
    print(f"synced /{', /'.join(names)} to {where}")
    return 0


def cmd_digest(settings: Settings, args: argparse.Namespace) -> int:
    """`/papers digest` (preview) or `/papers digest post` for one channel, from the shell."""
    from bot.messages import ChannelRef
    from bot.runtime import open_store

    try:
        channel = ChannelRef.parse(args.channel)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if channel.platform not in PLATFORMS:
        print(
            f"error: {channel.platform!r} is not a platform paperboy posts to "
            f"(one of {', '.join(PLATFORMS)}; e.g. slack:T0123:C0456)",
            file=sys.stderr,
        )
        return 2
    with closing(open_store(settings)) as store:
        code, text = asyncio.run(digest_once(settings, store, channel, dry_run=args.dry_run))
    print(text, file=sys.stderr if code == 2 else sys.stdout)
    return code


async def digest_once(
    settings: Settings, store: PaperStore, channel: ChannelRef, *, dry_run: bool
) -> tuple[int, str]:
    """One digest for `channel`: (exit code, what to print).

    Posting opens only what a post needs (Slack: the Web API client; Discord: a REST login),
    never the platform's inbound side: a running `paperboy run` on this host already holds
    the HTTP port or the Socket Mode connection.
    """
    from adapters.console import render
    from bot.messages import Invocation, UserRef
    from bot.ports import Outbox
    from bot.runtime import build_adapters, build_service

    outbox = Outbox()
    service = build_service(settings, store, outbox=outbox)
    operator = UserRef("cli", "operator")
    if dry_run:
        reply = await service.ask(Invocation("digest", channel, operator))
        return (1 if reply.is_error else 0), render(reply)
    adapters = build_adapters(settings, service)
    adapter = adapters.get(channel.platform)
    if adapter is None:
        return 2, (
            f"error: no {channel.platform} adapter is configured "
            "(set its token; see `paperboy check-config`)"
        )
    open_posting = getattr(adapter, "open_for_posting", None)
    try:
        if open_posting is not None:
            await open_posting()
        outbox.add(adapter)
        reply = await service.ask(Invocation("digest post", channel, operator))
    finally:
        await adapter.stop()
    return (1 if reply.is_error else 0), render(reply)
