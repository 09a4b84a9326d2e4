"""The exceptions that cross layers. Anything else is a bug."""

from __future__ import annotations


class BotError(Exception):
    """Base class of paperboy's own errors."""


class ConfigError(BotError):
    """The configuration is wrong; the message names the key."""


class QueryError(BotError):
    """A search query cannot be understood; the message says why, with an example."""


class IndexDamaged(BotError):
    """The search index files are broken (tantivy panicked or a checksum failed): the index
    must be rebuilt from the store."""


class SourceError(BotError):
    """A paper source failed (network, HTTP status, unparseable body)."""


class DeliveryError(BotError):
    """A platform post failed.

    `ambiguous` means the platform may have accepted the post (timeout after the request was
    written, 5xx): it is never resent blindly. `retry_after` is the platform's wait, in
    seconds, for a clear rejection that may be retried (429). `gone` means the bot cannot post
    to that channel any more (removed, channel deleted, uninstalled). `final` is a clear
    rejection that must not be retried (the message a resend matched was deleted by someone).
    `parent_gone` (with `final`): a reply in a thread whose parent post was deleted; no more
    replies go to that post (wave2.md ST-3, DT-2).
    """

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool = False,
        retry_after: float | None = None,
        gone: bool = False,
        final: bool = False,
        parent_gone: bool = False,
    ) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        self.gone = gone
        self.final = final or parent_gone
        self.parent_gone = parent_gone
