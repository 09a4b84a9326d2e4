"""The filters of `bot.query_filters` as tantivy queries, on the fields `bot.index_schema`
fills: `facets` (`has:code`, `org:...`, `venue:...` tokens), `stars` and `keywords`."""

from __future__ import annotations

from typing import Any

from tantivy import FieldType, Query as TQuery

from bot.index_forms import phrase_words
from bot.query_filters import Filter, Has, Keyword, Org, Stars, compact


def filter_query(schema: Any, en: Any, node: Filter) -> Any | None:
    """The query of one filter, or None when it cannot match anything."""
    if isinstance(node, Has):
        return _facet(schema, f"has:{node.what}")
    if isinstance(node, Org):
        name = compact(node.name)
        return _facet(schema, f"org:{name}") if name else None
    if isinstance(node, Stars):
        low, high = node.count.bounds()
        if low is not None and high is not None and high < low:
            return None
        return TQuery.range_query(schema, "stars", FieldType.Integer, low, high)
    if isinstance(node, Keyword):
        tokens: list[str] = en.analyze(node.term)
        if not tokens:
            return None
        if len(tokens) == 1:
            return TQuery.term_query(schema, "keywords", tokens[0])
        return TQuery.phrase_query(schema, "keywords", phrase_words(tokens), 0)
    year = f" {node.year}" if node.year is not None else ""
    return _facet(schema, f"venue:{node.name}{year}")


def _facet(schema: Any, token: str) -> Any:
    return TQuery.term_query(schema, "facets", token)
