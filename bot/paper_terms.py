"""A paper's distinctive terms, the one way paperboy weighs them: "more like this"
(`bot.similar`) and a channel's taste (`bot.taste`) both compare papers on these.

- Terms: the paper's title, Hugging Face keywords and abstract analysed exactly as the search
  index analyses those fields (lower case, stemmed: "models" is "model"), plus the acronym
  tokens the index writes beside a spelled-out curated expansion ("direct preference
  optimization" also counts as "dpo"). Function words, one-letter tokens and numbers never
  count.
- A term's weight in a paper (`weights`): its count in each field, dampened (1 + log tf) and
  weighted as search weighs fields (`BOOSTS`: title 3, keywords 1, abstract 1).
- Its rarity in the store (`idf`): log(N / df), df counted in the index's abstracts (for a
  word that no abstract has, in titles or keywords); 0 for a term no other paper has (it
  finds nothing) or that more than `MAX_DF_SHARE` of the papers have (it tells little).

A paper's weighed terms are `weights(...)[t] * idf(t, ...)`. Several papers together
(`shared_terms`): a term's weight is its mean over the papers (each scaled to a best of 1)
times the share of the papers that have it, so what they share leads. `term_lookups` turns weighed
terms into boosted term lookups in the text fields (a flat union of them is what tantivy's
block-max WAND prunes). What each feature does with them (a query, a cosine against a
profile) is its own.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tantivy import Query as TQuery

from bot.index_forms import FUNCTION_WORDS
from bot.index_schema import BOOSTS, TEXT_FIELDS, en_tokens, indexed_forms

__all__ = [
    "COMMON_FROM",
    "MAX_DF_SHARE",
    "field_counts",
    "idf",
    "term_lookups",
    "readable",
    "shared_terms",
    "terms_of",
    "weights",
]

MAX_DF_SHARE = 0.2  # a term in more papers than this share tells little: left out ...
COMMON_FROM = 50  # ... once it is in more than this many (a small store has no such words)
_WORD = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def field_counts(title: str, abstract: str | None, keywords: object) -> Counter[tuple[str, str]]:
    """(field, term) -> count, as the index holds the paper (acronym tokens included);
    `keywords` as stored: a list of strings (anything else is no keywords)."""
    texts = [("title", title or "")]
    listed = keywords if isinstance(keywords, list | tuple) else ()
    texts += [("keywords", k) for k in listed if isinstance(k, str)]
    if abstract:
        texts.append(("abstract", abstract))
    found = indexed_forms().found_each([text for _, text in texts])
    counts: Counter[tuple[str, str]] = Counter()
    for (field, text), acronyms in zip(texts, found, strict=True):
        for token in en_tokens(text) + list(acronyms):
            if token not in FUNCTION_WORDS and len(token) > 1 and not token.isdigit():
                counts[(field, token)] += 1
    return counts


def weights(counts: Counter[tuple[str, str]]) -> dict[str, float]:
    """term -> its weight in the paper before rarity: per field BOOSTS * (1 + log tf)."""
    out: dict[str, float] = {}
    for (field, term), tf in counts.items():
        out[term] = out.get(term, 0.0) + BOOSTS[field] * (1.0 + math.log(tf))
    return out


def terms_of(title: str, abstract: str | None, keywords: object) -> dict[str, float]:
    """A paper's terms from its columns, with their weights before rarity."""
    return weights(field_counts(title, abstract, keywords))


def idf(term: str, doc_freq: Any, total: int) -> float:
    """log(N / df) of an analysed term (`doc_freq(field, term)`: the index's), 0 for a term
    in one paper or fewer, or in more than `MAX_DF_SHARE` of them. One dictionary lookup per
    word for most words: a paper has about a hundred distinct ones."""
    df = int(doc_freq("abstract", term))
    if df == 0:
        df = max(int(doc_freq("title", term)), int(doc_freq("keywords", term)))
    if df <= 1 or df > max(total * MAX_DF_SHARE, COMMON_FROM):
        return 0.0
    return math.log(total / df)


def shared_terms(
    bags: Sequence[Mapping[str, float]], doc_freq: Any, total: int, max_terms: int
) -> dict[str, float]:
    """The `max_terms` heaviest terms of several papers together (`bags`: each paper's terms
    with their weights before rarity), with their weights (best 1.0)."""
    if total <= 0 or not bags:
        return {}
    rarity: dict[str, float] = {}
    profiles = []
    for bag in bags:
        weighed: dict[str, float] = {}
        for term, weight in bag.items():
            if term not in rarity:
                rarity[term] = idf(term, doc_freq, total)
            if rarity[term] > 0:
                weighed[term] = weight * rarity[term]
        best = max(weighed.values(), default=0.0)
        profiles.append({t: w / best for t, w in weighed.items()} if best else {})
    n = len(profiles)
    have = Counter(t for profile in profiles for t in profile)
    combined = {t: sum(p.get(t, 0.0) for p in profiles) / n * (have[t] / n) for t in have}
    top = sorted(combined.items(), key=lambda kv: (-kv[1], kv[0]))[:max_terms]
    best = top[0][1] if top else 1.0
    return {term: weight / best for term, weight in top}


def term_lookups(
    schema: Any, terms: Mapping[str, float], fields: Sequence[str] = TEXT_FIELDS
) -> Iterable[Any]:
    """A boosted lookup of each term in each of `fields` (weight x the field's boost)."""
    # A field without the term costs one dictionary miss when searched: no check first.
    for term, weight in terms.items():
        for field in fields:
            lookup = TQuery.term_query(schema, field, term, index_option="freq")
            yield TQuery.boost_query(lookup, weight * BOOSTS[field])


def readable(terms: Sequence[str], texts: Iterable[str]) -> list[str]:
    """`terms` as a reader would write them: for each analysed term ("overoptim"), the word
    of `texts` most often analysed to it ("overoptimization"); the term itself when none is
    (an acronym token written out in full)."""
    wanted = set(terms)
    seen: dict[str, Counter[str]] = {}
    analysed: dict[str, list[str]] = {}
    for text in texts:
        for word in _WORD.findall(text.lower()):
            tokens = analysed.get(word)
            if tokens is None:
                tokens = analysed[word] = en_tokens(word)
            for token in tokens:
                if token in wanted:
                    seen.setdefault(token, Counter())[word] += 1
    return [seen[t].most_common(1)[0][0] if t in seen else t for t in terms]
