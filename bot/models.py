"""SQLModel tables (the source of truth) and `PaperIn`, what a source hands to the store.

All tables exist from the first start so later features add behaviour, not schema churn.
Times are time-zone aware UTC datetimes (sqlmodel refuses naive ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class Paper(SQLModel, table=True):
    __tablename__ = "paper"
    __table_args__ = (
        # The change feed: each index replica reads papers by (change_seq, id) past its
        # position (bot.store.PaperStore.sync_index; docs/pipeline.md says why).
        Index("ix_paper_change", "change_seq", "id"),
        Index("ix_paper_first_seen_at", "first_seen_at"),
        Index("ix_paper_hf_daily_date", "hf_daily_date"),
        Index("ix_paper_announced_at", "announced_at"),
    )

    id: str = Field(primary_key=True, max_length=64)  # arXiv id without version
    version: int | None = None
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime | None = None
    hf_daily_date: date | None = None
    upvotes: int = 0
    comments: int = 0
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    organization: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # arXiv's author comment and journal reference, as written (bot.venues reads the venue).
    arxiv_comment: str | None = None
    journal_ref: str | None = None
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    first_seen_at: datetime
    updated_at: datetime  # when it last changed (informative: the index follows change_seq)
    # When this paper was announced, as digests count it (bot.announce.announced): the
    # arXiv announcement its own dates put it in, its Daily Papers day, or, for a paper a
    # live refresh brings in within days of that, when it reached this store.
    announced_at: datetime | None = None
    # The change feed's mark, written in the same transaction as the change: on SQLite a
    # counter that only grows in commit order (writers are serialised), on PostgreSQL the
    # writing transaction's id (pg_current_xact_id). See docs/pipeline.md.
    change_seq: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    # When a refresh last asked each source about this one paper (bot.sources.recheck). Not
    # paper data: written without moving the change feed.
    hf_checked_at: datetime | None = None
    arxiv_checked_at: datetime | None = None


class PaperEvent(SQLModel, table=True):
    """Something worth telling about a stored paper: a merge changed its code link, version,
    venue, upvotes or stars. Written in the merge's transaction, with its change-feed mark,
    so `PaperStore.events_since` reads them in commit order (bot/store_fresh.py)."""

    __tablename__ = "paper_event"
    __table_args__ = (
        Index("ix_paper_event_feed", "mark", "id"),
        Index("ix_paper_event_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    paper_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # code | version | venue | upvotes | stars
    old: str | None = None
    new: str | None = None
    at: datetime
    mark: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class Alias(SQLModel, table=True):
    """An acronym and what it stands for, mined from abstracts ("... (DPO)")."""

    __tablename__ = "alias"

    acronym: str = Field(primary_key=True, max_length=32)  # lower case
    expansion: str = Field(primary_key=True, max_length=200)  # lower case
    count: int = 1


class Channel(SQLModel, table=True):
    """A chat channel's digest settings. Key: `platform:workspace:channel`."""

    __tablename__ = "channel"

    key: str = Field(primary_key=True, max_length=255)
    schedule: str = "off"  # off | daily | weekdays | weekly:mon
    digest_time: str = "09:00"  # HH:MM local
    timezone: str = "UTC"  # IANA name
    max_papers: int = 10
    min_upvotes: int = 0
    quiet: bool = False  # an empty digest posts nothing
    followups: bool = True  # replies in a post's thread when its paper has news (bot.followups)
    paused_reason: str | None = None  # set when the platform says the bot cannot post here
    next_digest_at: datetime | None = None  # UTC
    last_digest_at: datetime | None = None  # UTC: the previous slot; candidates are newer
    created_at: datetime


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("channel_key", "normalized"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_key: str = Field(index=True, max_length=255)
    query: str  # as typed
    normalized: str = Field(max_length=500)  # for uniqueness: case and spacing folded
    created_by: str | None = None
    created_at: datetime


class DigestRun(SQLModel, table=True):
    """One digest per channel per slot, whoever builds it."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("channel_key", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_key: str = Field(max_length=255)
    slot: datetime  # UTC start of the slot
    status: str = "building"  # building | done | empty | failed
    instance_id: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    papers: int = 0


class Delivery(SQLModel, table=True):
    """The ledger: a paper is claimed for a channel before any post, then marked."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("channel_key", "paper_id"),
        Index("ix_delivery_status", "status"),
        # Digests read only recent claims (a paper new since a window cannot have been
        # claimed before it): the ledger grows by every paper posted, for years.
        Index("ix_delivery_claimed_at", "claimed_at"),
        # Follow-ups find the posts that carried a paper with news (bot/followup_scan.py).
        Index("ix_delivery_paper", "paper_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_key: str = Field(max_length=255)
    paper_id: str = Field(max_length=64)
    digest_run_id: int | None = None
    status: str = "claimed"  # claimed | sent | failed | unknown
    message_ref: str | None = None
    idempotency_key: str | None = None
    attempts: int = 0
    error: str | None = None
    retry_at: datetime | None = None
    claimed_at: datetime
    sent_at: datetime | None = None


class SourceState(SQLModel, table=True):
    __tablename__ = "source_state"

    source: str = Field(primary_key=True, max_length=64)
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    cursor: str | None = None
    papers_added: int = 0
    newest_paper_at: datetime | None = None
    # Records the last fetch could not store (bad data: see bot.paper_in) and which.
    items_skipped: int = 0
    skipped_note: str | None = None


class FollowUp(SQLModel, table=True):
    """A reply in the thread of a post that carried a paper, when the paper has news: one per
    (channel, paper, kind, level), with the Delivery row's claim/mark semantics
    (bot/followups.py). `level`: the threshold crossed (upvotes, stars), else 0."""

    __tablename__ = "followup"
    __table_args__ = (
        UniqueConstraint("channel_key", "paper_id", "kind", "level"),
        Index("ix_followup_due", "status", "retry_at"),
        Index("ix_followup_parent", "channel_key", "parent_ref"),
        Index("ix_followup_paper", "paper_id"),  # what was told about a paper with news
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_key: str = Field(max_length=255)
    paper_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # code | version | venue | upvotes | stars
    level: int = 0
    detail: str | None = Field(default=None, max_length=500)  # the event's new value
    parent_ref: str = Field(max_length=255)  # the digest post's message_ref (thread parent)
    # queued | claimed | posting | sent | failed | unknown | orphaned (parent deleted) | dropped
    status: str = Field(default="queued", max_length=16)
    event_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    attempts: int = 0
    message_ref: str | None = None
    error: str | None = Field(default=None, max_length=500)
    retry_at: datetime | None = None
    claimed_at: datetime | None = None  # the lease of the instance posting it
    created_at: datetime
    sent_at: datetime | None = None


class ReaderCursor(SQLModel, table=True):
    """Where a reader of `paper_event` is (its (mark, id) in commit order), durable and shared
    by every instance: moved in the same transaction as what the reader did with the events."""

    __tablename__ = "event_cursor"

    reader: str = Field(primary_key=True, max_length=64)
    mark: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    event_id: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaperText:
    """A stored paper's title and abstract, without the rest of its row (`PaperStore.texts`)."""

    title: str
    abstract: str | None


@dataclass(slots=True)
class PaperIn:
    """A paper as one source saw it. Empty fields mean "this source does not know".

    The store merges it into the one record per arXiv id; a field a source does not know
    never overwrites what another source knew.
    """

    id: str
    title: str
    source: str  # hf | arxiv | snapshot | demo ...
    version: int | None = None
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    hf_daily_date: date | None = None
    upvotes: int | None = None
    comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    organization: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] = field(default_factory=list)
    arxiv_comment: str | None = None
    journal_ref: str | None = None

    def as_row_values(self) -> dict[str, Any]:
        """The fields this source knows, by column name (unknown ones left out)."""
        values: dict[str, Any] = {"id": self.id, "title": self.title}
        for name in (
            "version",
            "abstract",
            "authors",
            "categories",
            "published_at",
            "hf_daily_date",
            "upvotes",
            "comments",
            "github_repo",
            "github_stars",
            "project_page",
            "organization",
            "ai_summary",
            "ai_keywords",
            "arxiv_comment",
            "journal_ref",
        ):
            value = getattr(self, name)
            if value is not None and value != "" and value != []:
                values[name] = value
        return values


class Reaction(SQLModel, table=True):
    """A 👍 or 👎 one person put on one of the bot's posts (`bot.taste_store`).

    One row per (channel, post, person, sign): a second copy of the same reaction changes
    nothing. A removal keeps the row with `active` False, so a late copy of the add (Slack
    redelivers for minutes, wave2.md SX-5) cannot revive it: events older than `event_at` are
    ignored. `paper_ids` are the post's papers, read from the ledger when the reaction came.
    """

    __tablename__ = "reaction"
    __table_args__ = (UniqueConstraint("channel_key", "message_ref", "user_id", "sign"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_key: str = Field(max_length=255)
    message_ref: str = Field(max_length=255)  # the post as the ledger stores it
    user_id: str = Field(max_length=64)
    sign: int  # +1 (👍) or -1 (👎)
    paper_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    event_at: float = 0.0  # the platform's time of the last event applied (epoch seconds)
    updated_at: datetime


class ReactionSeen(SQLModel, table=True):
    """Reaction events already handled, by the platform's event id, for an hour (SX-1, SX-5:
    Slack retries for about 5 minutes; bolt dedupes nothing, SX-4)."""

    __tablename__ = "reaction_seen"

    key: str = Field(primary_key=True, max_length=255)
    seen_at: datetime = Field(index=True)
