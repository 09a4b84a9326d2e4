"""The one URL check every renderer uses before a URL becomes a link.

URLs reach messages from Hugging Face and arXiv data (`github_repo`, `project_page`) and from
ids; all of it is hostile. A URL is shown as a link only when it is a plain http(s) URL with a
host, printable ASCII without whitespace, without the characters that end or open a link in
Slack (`<`, `>`, `|`) or Discord/markdown (`(`, `)`, `[`, `]`, backticks, quotes, backslash),
without a `user@` part (`https://huggingface.co@evil.example` hides its real host), and at most
`MAX_URL_CHARS` long. Anything else is dropped, never repaired: a repaired URL is a guess.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL_CHARS = 2_000
# Printable ASCII minus space and the characters listed in the module docstring.
_ALLOWED = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&*+,;=%]+")


def safe_url(url: object) -> str | None:
    """`url` (stripped of surrounding whitespace) when it is safe to link, else None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS or not _ALLOWED.fullmatch(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced `[` in the host
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if "@" in parts.netloc or not url.lower().startswith(parts.scheme.lower() + "://"):
        return None
    return url


_GITHUB_HOSTS = ("github.com", "www.github.com")


def github_url(url: object) -> str | None:
    """`url` when it is safe to link (`safe_url`), https, and on GitHub; else None."""
    checked = safe_url(url)
    if checked is None:
        return None
    parts = urlsplit(checked)
    if parts.scheme.lower() != "https" or (parts.hostname or "") not in _GITHUB_HOSTS:
        return None
    return checked
