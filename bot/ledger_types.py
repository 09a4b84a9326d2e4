"""What the delivery ledger (bot/ledger.py) takes and hands out: statuses, runs, posts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from bot.messages import Reply, is_direct_key

STALE_AFTER = timedelta(minutes=10)  # no single post takes this long: the owner died
CHECK_LEASE = timedelta(minutes=5)  # an unknown post being checked by one instance
CHECK_AGAIN = timedelta(minutes=2)  # a check that could not run now (Slack's history: 1/min)

CLAIMED, SENT, FAILED, UNKNOWN = "claimed", "sent", "failed", "unknown"


def digest_key(run_id: int) -> str:
    """The idempotency key of a digest post (Slack metadata, Discord nonce: <= 25 chars)."""
    return f"pb-digest-{run_id}"


class RunRequest(NamedTuple):
    """A digest to open: its channel, its slot, and the papers selected, in rank order."""

    channel_key: str
    slot: datetime
    paper_ids: Sequence[str]


class OwnedRun(NamedTuple):
    """A run this call owns, and the papers whose claim it won (in rank order)."""

    run_id: int
    paper_ids: list[str]


class Claim(NamedTuple):
    channel_key: str
    paper_id: str
    run_id: int


@dataclass(slots=True)
class Outgoing:
    """One post this instance owns: a digest (or its retry) and the papers claimed for it."""

    run_id: int | None
    channel_key: str
    reply: Reply | None  # None: built by `make_reply` right before the post
    paper_ids: list[str]
    idempotency_key: str
    lease: datetime  # the claimed_at of the claims, for the compare-and-set before posting
    retry: bool = False
    make_reply: Callable[[], Reply] | None = None


@dataclass(slots=True)
class UnknownPost:
    """One post whose outcome is unknown, as the ledger holds it (its papers' rows)."""

    channel_key: str
    run_id: int | None
    idempotency_key: str
    paper_ids: list[str]
    posted_at: datetime  # the claim's time: the post was made right after it
    attempts: int


@dataclass(slots=True)
class UnknownSummary:
    papers: int = 0
    posts: int = 0
    checking: int = 0  # papers still to be checked with the platform
    channels: list[str] = field(default_factory=list)

    def line(self, here: bool = False) -> str:
        """What `/papers status` and `/papers list` say (empty when nothing is unknown)."""
        if not self.papers:
            return ""
        where = "here" if here else f"in {len(self.channels)} channel(s)"
        s = "s" if self.papers != 1 else ""
        verb = "has" if self.papers == 1 else "have"
        text = (
            f"{self.papers} paper{s} in {self.posts} digest post(s) {where} {verb} an unknown "
            "outcome (the platform did not answer; the post may or may not be there)."
        )
        if self.checking:
            text += f" {self.checking} are still being checked with the platform."
        direct = sum(1 for key in self.channels if is_direct_key(key))
        if direct and not here:
            # Personal watches: nobody can look into someone's DMs, so those are not resent.
            text += f" {direct} of these are someone's direct messages (watches): not resent."
        if self.papers > self.checking and (here or direct < len(self.channels)):
            text += (
                " Look in the channel: if the digest is missing, `/papers digest resend` "
                "there posts those papers again; if it is there, nothing to do."
            )
        return text
