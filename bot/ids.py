"""arXiv identifiers: one regex for new (`2401.01234v2`) and old (`hep-th/9901001`) styles.

The store's key is the id without version; the version is kept as a field.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ID = r"(?:(?P<new>\d{4}\.\d{4,5})|(?P<old>[a-z][a-z-]*(?:\.[A-Za-z]{2})?/\d{7}))(?:v(?P<v>\d+))?"
ARXIV_ID_RE = re.compile(rf"^{_ID}$")
# An id anywhere in a URL of arxiv.org or huggingface.co (abs, pdf, html, papers pages).
_URL_RE = re.compile(
    r"^(?:https?://)?(?:www\.|export\.)?(?:arxiv\.org|huggingface\.co|hf\.co)/"
    r"(?:abs|pdf|html|papers)/" + _ID + r"(?:\.pdf)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)
_PREFIX_RE = re.compile(r"^arxiv:\s*", re.IGNORECASE)


class ArxivId(NamedTuple):
    key: str  # without version: what the store uses
    version: int | None


def parse_arxiv_id(text: str) -> ArxivId | None:
    """Return the id in `text` (a bare id, `arXiv:…`, or an arxiv.org / hf.co URL), or None."""
    text = _PREFIX_RE.sub("", text.strip().strip("<>"))
    match = ARXIV_ID_RE.match(text) or _URL_RE.match(text)
    if not match:
        return None
    key = match.group("new") or match.group("old")
    version = match.group("v")
    return ArxivId(key, int(version) if version else None)


def is_new_style(key: str) -> bool:
    return "/" not in key


def abs_url(key: str) -> str:
    return f"https://arxiv.org/abs/{key}"


def hf_url(key: str) -> str:
    return f"https://huggingface.co/papers/{key}"
