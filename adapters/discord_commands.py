"""The `/papers` application command group, generated from the core's command registry
(`bot.commands.COMMANDS`) through discord.py's public API, and its upload (`paperboy discord
sync`)."""

from __future__ import annotations

import inspect
import logging
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

import discord
from discord import app_commands

from adapters.discord_render import clip, no_mentions
from bot.commands import COMMANDS, CommandSpec, Option
from bot.ports import ConfigError

logger = logging.getLogger(__name__)

GROUP_NAME = "papers"
GROUP_DESCRIPTION = "Research papers: search, paper details, topics and digests for this channel"
# Application command limits (D-INT-3).
COMMAND_DESCRIPTION_MAX = 100
CHOICE_MAX = 25


@lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    # Only Area/City names people pick; the legacy aliases (EST5EDT, Etc/GMT+3...) confuse.
    return tuple(
        sorted(
            z
            for z in zoneinfo.available_timezones()
            if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/"))
        )
    )


def timezone_choices(current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 IANA zones matching what the user typed so far (prefix matches first)."""
    wanted = current.strip().lower().replace(" ", "_")[:64]
    if not wanted:
        picks = [
            "UTC",
            "Europe/London",
            "Europe/Berlin",
            "America/New_York",
            "America/Los_Angeles",
            "Asia/Tokyo",
            "Asia/Shanghai",
            "Asia/Kolkata",
            "Australia/Sydney",
        ]
    else:
        zones = _zones() + ("UTC",)
        prefix = [z for z in zones if z.lower().startswith(wanted)]
        city = [z for z in zones if z.lower().split("/")[-1].startswith(wanted)]
        inner = [z for z in zones if wanted in z.lower()]
        picks = list(dict.fromkeys(prefix + city + inner))
    return [app_commands.Choice(name=z, value=z) for z in picks[:CHOICE_MAX]]


def topic_choices(topics: Sequence[str], current: str) -> list[app_commands.Choice[str]]:
    """This channel's topics matching the partial input; a topic too long for a choice value
    (100 characters) is chosen by its number, which `unsubscribe` also accepts."""
    wanted = " ".join(current.lower().split())
    choices = []
    for n, topic in enumerate(topics, 1):
        if wanted and wanted not in topic.lower() and wanted != str(n):
            continue
        value = topic if len(topic) <= 100 else str(n)
        choices.append(app_commands.Choice(name=clip(f"{n}. {topic}", 100), value=value))
    return choices[:CHOICE_MAX]


CommandRunner = Callable[[Any, str, dict[str, Any]], Awaitable[None]]
Autocompleter = Callable[[Any, str], Awaitable[list[app_commands.Choice[str]]]]


class OptionTransformer(app_commands.Transformer[Any]):
    """One registry `Option` as a Discord string option, with its choices."""

    def __init__(self, option: Option) -> None:
        self.option = option

    @property
    def choices(self) -> list[app_commands.Choice[int | float | str]] | None:
        if not self.option.choices:
            return None
        return [app_commands.Choice(name=c, value=c) for c in self.option.choices[:CHOICE_MAX]]

    async def transform(self, _interaction: discord.Interaction[Any], value: Any, /) -> Any:
        return value  # the core reads every option as text (`build_text`)


class CompletedOption(OptionTransformer):
    """An option whose values Discord suggests while the user types (`Option.autocomplete`)."""

    def __init__(self, option: Option, complete: Autocompleter) -> None:
        super().__init__(option)
        self.complete = complete

    async def autocomplete(
        self, interaction: discord.Interaction[Any], value: int | float | str, /
    ) -> list[app_commands.Choice[int | float | str]]:
        found = await self.complete(interaction, str(value))
        return [app_commands.Choice(name=choice.name, value=choice.value) for choice in found]


def _transformer(option: Option, autocompleters: dict[str, Autocompleter]) -> OptionTransformer:
    complete = autocompleters.get(option.autocomplete or "")
    if complete is not None and not option.choices:
        return CompletedOption(option, complete)
    return OptionTransformer(option)


def _command(
    spec: CommandSpec, run: CommandRunner, autocompleters: dict[str, Autocompleter]
) -> app_commands.Command[Any, ..., None]:
    """One subcommand generated from a `CommandSpec`: a string option per `Option`, its
    choices and autocomplete from a `Transformer`, its description through
    `app_commands.describe`.

    discord.py reads a command's options only from its callback's signature (it has no API to
    pass them: Rapptz/discord.py#9463, #7539), so the one generic callback declares its
    parameters with Python's signature protocol (`__signature__`, which `inspect.signature`
    honours); everything Discord-specific goes through discord.py's public API."""

    async def callback(interaction: discord.Interaction[Any], **options: Any) -> None:
        await run(interaction, spec.name, options)

    # Discord requires required options before optional ones.
    options = sorted(spec.options, key=lambda o: not o.required)
    params = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        ),
        *(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_transformer(option, autocompleters),
                default=inspect.Parameter.empty if option.required else None,
            )
            for option in options
        ),
    ]
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    described = app_commands.describe(
        **{o.name: clip(o.description, COMMAND_DESCRIPTION_MAX) for o in options}
    )(callback)
    return app_commands.Command(
        name=spec.name,
        description=clip(spec.summary.replace("`", ""), COMMAND_DESCRIPTION_MAX),
        callback=described,
    )


def build_group(run: CommandRunner, autocompleters: dict[str, Autocompleter]) -> app_commands.Group:
    """`/papers <sub>` with one subcommand per entry of the core's registry, in its order.

    Discord accepts `default_member_permissions` only on top-level commands, not on
    subcommands, so the Manage Channels rule for subscribe/unsubscribe/schedule is enforced
    per invocation (`Invocation.can_manage`) rather than in the command payload.
    """
    group = app_commands.Group(name=GROUP_NAME, description=GROUP_DESCRIPTION)
    for spec in COMMANDS.values():
        group.add_command(_command(spec, run, autocompleters))
    return group


class PapersTree(app_commands.CommandTree[Any]):
    """The adapter's command tree: a failing command still answers, privately."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        logger.error("interaction failed: %s", error, exc_info=error)
        if not interaction.response.is_done():
            await interaction.response.send_message(
                "Sorry, something went wrong on my side. Try again in a moment.",
                ephemeral=True,
                allowed_mentions=no_mentions(),
            )


def _unavailable_runner() -> tuple[CommandRunner, dict[str, Autocompleter]]:
    async def run(_interaction: Any, _name: str, _options: dict[str, Any]) -> None:
        raise RuntimeError("commands built for their payload only")

    async def complete(_interaction: Any, _current: str) -> list[app_commands.Choice[str]]:
        return []

    return run, {"topics": complete, "watches": complete, "timezones": complete}


def _payload_tree() -> app_commands.CommandTree[discord.Client]:
    # A client only to hold the tree: no login, no gateway. Its voice-support warnings are
    # noise here, so they are muted while it is built.
    client_log = logging.getLogger("discord.client")
    level = client_log.level
    client_log.setLevel(logging.ERROR)
    try:
        client = discord.Client(intents=discord.Intents(guilds=True))
    finally:
        client_log.setLevel(level)
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    run, autocompleters = _unavailable_runner()
    tree.add_command(build_group(run, autocompleters))
    return tree


def command_payload() -> list[dict[str, Any]]:
    """The exact JSON `paperboy discord sync` uploads (what `CommandTree.sync` sends)."""
    tree = _payload_tree()
    return [command.to_dict(tree) for command in tree.get_commands()]


async def sync_commands(token: str, guild_id: int | None) -> list[str]:
    """Upload the commands: to one guild (instant; for testing) or globally. Deliberate, never
    on start: command creates are rate limited (200 per day per guild)."""
    tree = _payload_tree()
    client = tree.client
    try:
        try:
            await client.login(token)
        except discord.LoginFailure as exc:
            raise ConfigError(f"DISCORD_TOKEN was rejected by Discord: {exc}") from None
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
        else:
            synced = await tree.sync()
    finally:
        await client.close()
    return [command.name for command in synced]
