"""A terminal channel: type exactly what a Slack user types (`/papers dpo`), read the answer.

It is the default platform when no token is configured, and what `paperboy demo` runs.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from typing import TextIO

from bot.links import safe_url
from bot.messages import ChannelRef, Invocation, Reply, ReplyKind, UserRef
from bot.service import BotService

PROMPT = "papers> "
CHANNEL = ChannelRef("console", "local", "terminal")
USER = UserRef("console", "you")
WIDTH = 100


def to_invocation(line: str, channel: ChannelRef = CHANNEL) -> Invocation | None:
    """A typed line as an invocation; `/papers` may be left out. None for a blank line."""
    text = line.strip()
    for prefix in ("/papers", "papers"):
        if text.lower() == prefix:
            text = ""
        elif text.lower().startswith(prefix + " "):
            text = text[len(prefix) + 1 :]
    if not line.strip():
        return None
    return Invocation(text=text, channel=channel, user=USER)


def render(reply: Reply) -> str:
    """Readable terminal text: title, then each paper with authors, date, upvotes and link."""
    out: list[str] = []
    marker = "✗ " if reply.kind is ReplyKind.ERROR else ""
    detail = reply.kind is ReplyKind.PAPER
    if reply.title and not (detail and reply.cards and reply.cards[0].title == reply.title):
        out.append(f"{marker}{reply.title}")
    if reply.text:
        out.extend(_wrap(reply.text, ""))
    for n, card in enumerate(reply.cards, 1):
        if out:
            out.append("")
        out.append(f"{n}. {card.title}" if not detail else card.title)
        facts = [card.short_authors(8 if detail else 3)]
        if card.published:
            facts.append(card.published.isoformat())
        if card.upvotes:
            facts.append(f"▲ {card.upvotes}")
        if card.categories:
            facts.append(" ".join(card.categories[:3]))
        out.extend(_wrap(" · ".join(f for f in facts if f), "   "))
        if card.matched_topics:
            out.append("   topics: " + ", ".join(card.matched_topics))
        text = card.abstract if detail else card.blurb(240)
        if text:
            out.extend(_wrap(text, "   "))
        links = [safe_url(u) for u in (card.url, card.hf_url, card.github_repo)]
        out.append("   " + "  ".join(u for u in links if u))
    if reply.more:
        out.append(f"\n+{reply.more} more")
    if reply.footer:
        out.append("")
        out.extend(_wrap(reply.footer, ""))
    return printable("\n".join(out))


# C0 and C1 control characters except newline and tab: paper text with ESC sequences could
# otherwise recolour, move the cursor or retitle the user's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    return _CONTROL.sub("", text)


def _wrap(text: str, indent: str) -> list[str]:
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        lines.extend(
            textwrap.wrap(para, WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]
        )
    return lines


class ConsoleAdapter:
    platform = "console"

    def __init__(
        self,
        service: BotService,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        interactive: bool = True,
    ) -> None:
        self.service = service
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = interactive
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interactive:
            self._task = asyncio.create_task(self.repl())

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.finished.set()

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        self._print(f"[{channel.key}]\n{render(reply)}\n")
        return idempotency_key

    async def ask(self, line: str) -> Reply | None:
        inv = to_invocation(line)
        if inv is None:
            return None
        reply = await self.service.handle(inv)
        self._print(render(reply) + "\n")
        return reply

    async def run_lines(self, lines: list[str], *, echo: bool = True) -> list[Reply]:
        replies = []
        for line in lines:
            if echo:
                self._print(f"{PROMPT}{line}")
            reply = await self.ask(line)
            if reply is not None:
                replies.append(reply)
        return replies

    async def repl(self) -> None:
        self._print("Type what you would type in Slack, e.g. /papers dpo  (quit: Ctrl-D or quit)")
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.stdout.write(PROMPT)
                self.stdout.flush()
                line = await loop.run_in_executor(None, self.stdin.readline)
                if not line or line.strip().lower() in ("quit", "exit", ":q"):
                    break
                await self.ask(line)
        finally:
            self.finished.set()

    def _print(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()
