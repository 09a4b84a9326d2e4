"""Where a paper was accepted, read from its arXiv comment and journal reference.

`venue_of(comment, journal_ref) -> Venue | None` is pure and total: any input (None, huge
strings, NUL, any Unicode) gives a Venue or None, never an exception. Each text is cut to
`MAX_TEXT` characters first (real comments are a line or two), and every pattern is a flat
alternation of literals or bounded repetitions: time is linear in the (capped) input.

What counts as accepted (docs/pipeline.md):
- a journal reference naming a known venue (it is the published reference, AX-4);
- a comment clause (split on `;`, `|` and sentence ends) that says so: "accepted at /
  to / by / for", "to appear in", "camera-ready", "published in", "in proceedings of",
  "presented at", "oral / spotlight / poster at", with a known venue after those words;
- a clause that *starts* with a known venue ("ICLR 2025 (Oral)", "ACL 2024 Findings",
  "2023 IEEE International Conference on Software Testing ...").

Not accepted: a clause saying "submitted to", "under review", "in submission", "extended
version of" (another paper), or one that merely names a venue in passing ("we compare to the
NeurIPS 2023 winner"). A venue is known when it is in `_VENUES` (acronyms, matched in any
case as whole words, and their long names); other conferences are left out rather than
guessed. "Findings of ..." and workshops are kept apart in `Venue.kind`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TEXT = 2_000  # characters of each field read; arXiv comments are far shorter


@dataclass(frozen=True, slots=True)
class Venue:
    name: str  # the canonical acronym: NeurIPS, ICML, ACL, ...
    year: int | None = None
    kind: str = "main"  # main | findings | workshop

    def label(self) -> str:
        """`NeurIPS 2025`, `EMNLP 2024 Findings`, `ICML Workshop`."""
        parts = [self.name]
        if self.year is not None:
            parts.append(str(self.year))
        if self.kind != "main":
            parts.append(self.kind.capitalize())
        return " ".join(parts)


# canonical name -> (acronyms, long names); matched case-insensitively.
_VENUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "NeurIPS": (("NeurIPS", "NIPS"), ("Neural Information Processing Systems",)),
    "ICML": (("ICML",), ("International Conference on Machine Learning",)),
    "ICLR": (("ICLR",), ("International Conference on Learning Representations",)),
    "ACL": (("ACL",), ("Annual Meeting of the Association for Computational Linguistics",)),
    "EMNLP": (("EMNLP",), ("Empirical Methods in Natural Language Processing",)),
    "NAACL": (("NAACL",), ("North American Chapter of the Association for Computational",)),
    "EACL": (("EACL",), ("European Chapter of the Association for Computational",)),
    "COLING": (("COLING",), ("International Conference on Computational Linguistics",)),
    "CVPR": (("CVPR",), ("Conference on Computer Vision and Pattern Recognition",)),
    "ICCV": (("ICCV",), ("International Conference on Computer Vision",)),
    "ECCV": (("ECCV",), ("European Conference on Computer Vision",)),
    "WACV": (("WACV",), ("Winter Conference on Applications of Computer Vision",)),
    "AAAI": (("AAAI",), ("AAAI Conference on Artificial Intelligence",)),
    "IJCAI": (("IJCAI",), ("International Joint Conference on Artificial Intelligence",)),
    "KDD": (("KDD", "SIGKDD"), ("Knowledge Discovery and Data Mining",)),
    "WWW": (("WWW", "TheWebConf"), ("The Web Conference",)),
    "SIGIR": (("SIGIR",), ()),
    "CoRL": (("CoRL",), ("Conference on Robot Learning",)),
    "RSS": (("RSS",), ("Robotics: Science and Systems",)),
    "ICRA": (("ICRA",), ("International Conference on Robotics and Automation",)),
    "IROS": (("IROS",), ("International Conference on Intelligent Robots and Systems",)),
    "TMLR": (("TMLR",), ("Transactions on Machine Learning Research",)),
    "JMLR": (("JMLR",), ("Journal of Machine Learning Research",)),
    "TACL": (("TACL",), ("Transactions of the Association for Computational Linguistics",)),
    "TPAMI": (("TPAMI",), ("Transactions on Pattern Analysis and Machine Intelligence",)),
    "COLM": (("COLM",), ("Conference on Language Modeling",)),
    "AISTATS": (("AISTATS",), ("Artificial Intelligence and Statistics",)),
    "UAI": (("UAI",), ("Uncertainty in Artificial Intelligence",)),
    "MICCAI": (("MICCAI",), ("Medical Image Computing and Computer Assisted",)),
    "Interspeech": (("Interspeech",), ()),
    "ICASSP": (("ICASSP",), ("International Conference on Acoustics, Speech",)),
    "ICSE": (("ICSE",), ("International Conference on Software Engineering",)),
    "ICST": (("ICST",), ("Conference on Software Testing, Verification",)),
    "ISSTA": (("ISSTA",), ("International Symposium on Software Testing and Analysis",)),
}

_CANONICAL = {
    text.lower(): name
    for name, (acronyms, longs) in _VENUES.items()
    for text in (*acronyms, *longs)
}
# Longest first, so a long name wins over an acronym inside it ("AAAI Conference ...").
_NAMES = sorted(_CANONICAL, key=len, reverse=True)
# A whole word: no letter, digit or path character before, no letter after (ICLR2025 and
# ICLR'26 count; github.com/x/iclr does not).
_VENUE_RE = re.compile(
    r"(?<![A-Za-z0-9./_])(" + "|".join(re.escape(n) for n in _NAMES) + r")(?![A-Za-z])",
    # ASCII case folding only: a case-insensitive Unicode match lets the long s or the
    # dotted capital I stand for s or i, and the match would then be no key of _CANONICAL.
    re.IGNORECASE | re.ASCII,
)
_YEAR_AFTER_RE = re.compile(r"\)?\s{0,2}(?:-?\s?(\d{4})|[-'’‘](\d{2}))(?!\d)")
_ANY_YEAR_RE = re.compile(r"(?<!\d)((?:19[89]|20[0-4])\d)(?!\d)")
_CLAUSE_RE = re.compile(r"[;|]+|(?:(?<=[A-Za-z]{5})|(?<=\d)|(?<=\)))\.\s+")
_ACCEPTED_RE = re.compile(
    r"\baccepted\b|\bto appear\b|\bappear(?:s|ing)? (?:in|at)\b|\bcamera[\s-]?ready\b"
    r"|\bpublished (?:in|at|by|as)\b|\bto be published\b|\bproceedings of\b|\bin proc\b"
    r"|\bpresented at\b|\bfindings of\b|\b(?:oral|spotlight|poster)(?: presentation)? (?:at|in)\b",
    re.IGNORECASE,
)
_REFUSED_RE = re.compile(
    r"\bsubmitted\b|\bunder (?:review|submission)\b|\bin submission\b|\bsubmission to\b"
    r"|\bextended version of\b|\brejected\b",
    re.IGNORECASE,
)
_URL_RE = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
_FINDINGS_RE = re.compile(r"\bfindings\b", re.IGNORECASE)
_WORKSHOP_RE = re.compile(r"\bworkshops?\b", re.IGNORECASE)
# Words that may stand before a venue at a clause's start: "In Proc. of the 16th IEEE ...".
_LEADING = frozenset(
    "in proc proceedings of the ieee acm cvf ieee/cvf ieee/acm annual international "
    "st nd rd th conference lrec".split()  # LREC-COLING is held jointly
)


def canonical_venue(text: str) -> str | None:
    """The canonical name of a known venue given by an acronym or long name, any case."""
    return _CANONICAL.get(" ".join(text.lower().split()))


def venue_of(comment: object, journal_ref: object = None) -> Venue | None:
    """The venue a paper was accepted at, from its journal reference, else its comment."""
    if isinstance(journal_ref, str) and journal_ref:
        for part in _plain(journal_ref).split(";"):
            found = _first_venue(part, 0)
            if found is not None:
                return found
    if isinstance(comment, str) and comment:
        for clause in _CLAUSE_RE.split(_plain(comment)):
            found = _accepted_in(clause)
            if found is not None:
                return found
    return None


def _plain(text: str) -> str:
    """The first MAX_TEXT characters, addresses left out, whitespace runs as one space."""
    return " ".join(_URL_RE.sub(" ", text[:MAX_TEXT]).split())


def _accepted_in(clause: str) -> Venue | None:
    """The venue this comment clause says the paper was accepted at, if it says so."""
    if _REFUSED_RE.search(clause):
        return None
    cue = _ACCEPTED_RE.search(clause)
    if cue is not None:
        found = _first_venue(clause, cue.end())
        if found is not None:
            return found
    first = _VENUE_RE.search(clause)
    if first is not None and _only_leading_words(clause[: first.start()]):
        return _venue_at(clause, first)
    return None


def _only_leading_words(prefix: str) -> bool:
    words = re.split(r"[^0-9A-Za-z/]+", prefix.lower())
    for word in words:
        if not word or word in _LEADING or word.isdigit():
            continue
        if word[:-2].isdigit() and word[-2:] in ("st", "nd", "rd", "th"):
            continue
        return False
    return True


def _first_venue(text: str, start: int) -> Venue | None:
    match = _VENUE_RE.search(text, start)
    return _venue_at(text, match) if match is not None else None


def _venue_at(text: str, match: re.Match[str]) -> Venue:
    name = _CANONICAL[match.group(1).lower()]
    return Venue(name, _year(text, match.end()), _kind(text))


def _year(text: str, end: int) -> int | None:
    after = _YEAR_AFTER_RE.match(text, end)
    if after is not None:
        year = int(after.group(1)) if after.group(1) else 2000 + int(after.group(2))
        if 1980 <= year <= 2049:
            return year
    anywhere = _ANY_YEAR_RE.search(text)
    return int(anywhere.group(1)) if anywhere is not None else None


def _kind(text: str) -> str:
    if _WORKSHOP_RE.search(text):
        return "workshop"
    if _FINDINGS_RE.search(text):
        return "findings"
    return "main"
