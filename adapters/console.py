"""A terminal channel: type exactly what a Slack user types (`/papers dpo`), read the answer.

It is the default platform when no token is configured, and what `paperboy demo` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from bot.messages import (
    ChannelRef,
    Invocation,
    PaperCard,
    Reply,
    ReplyKind,
    UserRef,
    safe_url,
)
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


def render(reply: Reply, *, width: int = WIDTH, emphasis: bool = False) -> str:
    """Readable terminal text: title, then each paper with authors, date, upvotes and link.

    `width` is the terminal's (lines never break inside a word); `emphasis` shows `code` and
    titles in bold instead of raw backticks, for a terminal (never when piped).
    """
    out: list[str] = []
    marker = "✗ " if reply.kind is ReplyKind.ERROR else ""
    detail = reply.kind is ReplyKind.PAPER
    width = max(40, width)

    def wrap(text: str, indent: str) -> list[str]:
        return _wrap(text, indent, width, emphasis)

    if reply.title and not (detail and reply.cards and reply.cards[0].title == reply.title):
        out.append(_bold(f"{marker}{reply.title}", emphasis))
    if reply.text:
        out.extend(wrap(reply.text, ""))
    for n, card in enumerate(reply.cards, 1):
        if out:
            out.append("")
        out.append(_bold(f"{n}. {card.title}" if not detail else card.title, emphasis))
        facts = card.facts(8 if detail else 3)
        if card.categories:
            facts.append(" ".join(card.categories[:3]))
        out.extend(wrap(" · ".join(f for f in facts if f), "   "))
        out.extend(_digest_lines(card))
        if detail and card.summary.strip():
            out.extend(wrap("In one line: " + card.summary, "   "))
        text = card.abstract if detail else card.blurb(240)
        if text:
            out.extend(wrap(text, "   "))
        out.append("   " + "  ".join(_links(card)))
    if reply.more:
        out.append(f"\n+{reply.more} more")
    if reply.footer:
        out.append("")
        out.extend(wrap(reply.footer, ""))
    # Control characters in paper text go first; only then do the emphasis markers become the
    # terminal's bold codes (they are private-use characters until here).
    text = printable("\n".join(out))
    return text.replace(_ON, _BOLD).replace(_OFF, _RESET) if emphasis else text


def _digest_lines(card: PaperCard) -> list[str]:
    """A digest card's topics it matched, and why the channel's reactions moved it."""
    lines = ["   topics: " + ", ".join(card.matched_topics)] if card.matched_topics else []
    return lines + (["   " + card.reason] if card.reason else [])


def _links(card: PaperCard) -> list[str]:
    """arXiv, Hugging Face, then the code (a checked https GitHub URL only) with its stars."""
    links = [u for u in (safe_url(card.url), safe_url(card.hf_url)) if u]
    if card.code_url:
        links.append(f"{card.code_url} {card.stars}".rstrip())
    return links


# C0 and C1 control characters except newline and tab: paper text with ESC sequences could
# otherwise recolour, move the cursor or retitle the user's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    return _CONTROL.sub("", text)


_BOLD, _RESET = "\x1b[1m", "\x1b[0m"
_ON, _OFF = "\ue000", "\ue001"  # bold on/off while rendering (see render)


def _bold(text: str, emphasis: bool) -> str:
    return f"{_ON}{text}{_OFF}" if emphasis else text


def _wrap(text: str, indent: str, width: int = WIDTH, emphasis: bool = False) -> list[str]:
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        # Wrapped before the emphasis goes in, so escape codes never count as columns; long
        # words (URLs) overflow rather than break.
        lines.extend(
            textwrap.wrap(
                para,
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [""]
        )
    return _emphasize(lines) if emphasis else lines


def _emphasize(lines: list[str]) -> list[str]:
    """`code` spans in bold, also a span the wrap split across lines (each line closes its
    own bold, so a terminal never carries it into the next)."""
    if not any(line.count("`") for line in lines):
        return lines
    if sum(line.count("`") for line in lines) % 2:
        return lines  # an unpaired backtick is text, not markup
    out, bold = [], False
    for line in lines:
        parts = line.split("`")
        text = _ON if bold else ""
        for n, part in enumerate(parts):
            if n:
                bold = not bold
                text += _ON if bold else _OFF
            text += part
        out.append(text + (_OFF if bold else ""))
    return out


def terminal_width(stream: TextIO) -> int:
    """The terminal's width for a terminal, WIDTH when piped."""
    if _is_tty(stream):
        return min(shutil.get_terminal_size((WIDTH, 24)).columns, 160)
    return WIDTH


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ConsoleAdapter:
    platform = "console"

    def __init__(
        self,
        service: BotService,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        interactive: bool = True,
        history_file: Path | None = None,
    ) -> None:
        self.service = service
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.interactive = interactive
        self.history_file = history_file
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interactive:
            self._task = asyncio.create_task(self.repl())

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.finished.set()

    async def send(self, channel: ChannelRef, reply: Reply, *, idempotency_key: str) -> str:
        # A direct message (`console:local:@you`, personal watches) prints here too.
        where = f"direct message to {channel.user_id}" if channel.is_direct else channel.key
        if reply.thread_of is not None:
            # A follow-up: shown indented under a note of the post it answers.
            body = "\n".join(f"  │ {line}" for line in self._render(reply).splitlines())
            self._print(f"[{where}] in thread of {reply.thread_of}:\n{body}\n")
            return idempotency_key
        self._print(f"[{where}]\n{self._render(reply)}\n")
        return idempotency_key

    async def ask(self, line: str) -> Reply | None:
        inv = to_invocation(line)
        if inv is None:
            return None
        reply = await self.service.ask(inv)
        self._print(self._render(reply) + "\n")
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
        """Read lines until Ctrl-D or `quit`. A terminal gets line editing and history
        (prompt_toolkit), Ctrl-C clears the line, and log lines print above the prompt."""
        self._print("Type what you would type in Slack, e.g. /papers dpo  (quit: Ctrl-D or quit)")
        try:
            if _is_tty(self.stdin) and _is_tty(self.stdout):
                await self._repl_terminal()
            else:
                await self._repl_lines()
        finally:
            self.finished.set()

    async def _repl_terminal(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        history: History = InMemoryHistory()
        if self.history_file is not None:
            with contextlib.suppress(OSError):
                self.history_file.parent.mkdir(parents=True, exist_ok=True)
                history = FileHistory(str(self.history_file))
        session: PromptSession[str] = PromptSession(history=history)
        with patch_stdout(raw=True), _logs_above_prompt():
            original, self.stdout = self.stdout, sys.stdout
            try:
                while True:
                    try:
                        line = await session.prompt_async(PROMPT)
                    except KeyboardInterrupt:
                        continue  # Ctrl-C: the line is dropped, the prompt stays
                    except EOFError:
                        break
                    if line.strip().lower() in QUIT:
                        break
                    await self.ask(line)
            finally:
                self.stdout = original

    async def _repl_lines(self) -> None:
        # Piped input is read in a daemon thread: a thread blocked in readline() must never
        # keep the process alive at shutdown (the default executor would wait for it).
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()

        def read() -> None:
            while True:
                try:
                    line = self.stdin.readline()
                except (OSError, ValueError):
                    line = ""
                try:
                    loop.call_soon_threadsafe(lines.put_nowait, line)
                except RuntimeError:  # the loop is gone: the console has stopped
                    return
                if not line:
                    return

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        while True:
            self.stdout.write(PROMPT)
            self.stdout.flush()
            line = await lines.get()
            if not line or line.strip().lower() in QUIT:
                break
            await self.ask(line)

    def _render(self, reply: Reply) -> str:
        tty = _is_tty(self.stdout)
        return render(reply, width=terminal_width(self.stdout), emphasis=tty)

    def _print(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()


QUIT = ("quit", "exit", ":q")


@contextlib.contextmanager
def _logs_above_prompt() -> Iterator[None]:
    """Point the log handlers at the patched stderr, so a log line scrolls up above the
    prompt instead of being written over what the user is typing."""
    moved: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.__stderr__,
            sys.__stdout__,
        ):
            moved.append((handler, handler.stream))
            handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)
