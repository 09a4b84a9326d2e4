"""Build bot/data/demo_papers.json from a saved Hugging Face papers search page (text).

Usage: python tools/make_demo_data.py ../shared/seed/hf-daily-papers-search-alignment.txt

The page gives title, abstract, author count, date and upvotes of each paper. What it lacks
(arXiv ids, author names, categories) is filled in plausibly and deterministically, and the
output file says so.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from datetime import date, datetime
from pathlib import Path

FIRST = [
    "Wei",
    "Anna",
    "Rahul",
    "Sofia",
    "Jun",
    "Lena",
    "Omar",
    "Mei",
    "Tomás",
    "Yuki",
    "Ivan",
    "Priya",
    "Lucas",
    "Hana",
    "Daniel",
    "Chen",
    "Amara",
    "Jonas",
    "Sara",
    "Kenji",
]
LAST = [
    "Zhang",
    "Müller",
    "Sharma",
    "Rossi",
    "Li",
    "Novak",
    "Haddad",
    "Wang",
    "García",
    "Sato",
    "Petrov",
    "Iyer",
    "Silva",
    "Kim",
    "Cohen",
    "Liu",
    "Okafor",
    "Berg",
    "Costa",
    "Tanaka",
]
DATE_RE = re.compile(r"^([A-Z][a-z]{2}) (\d{1,2})(?:, (\d{4}))?(?: (\d+))?$")
PAGE_YEAR = 2025


def parse(text: str) -> list[dict[str, object]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    papers = []
    for i, line in enumerate(lines):
        m = re.match(r"^• (\d+) authors?$", line)
        if not m or i < 2:
            continue
        title, abstract = lines[i - 2], lines[i - 1]
        when = DATE_RE.match(lines[i + 2]) if i + 2 < len(lines) else None
        if not when:
            continue
        month, day, year, votes = when.groups()
        published = datetime.strptime(f"{month} {day} {year or PAGE_YEAR}", "%b %d %Y").date()
        papers.append(build(title, abstract, int(m.group(1)), published, int(votes or 0)))
    return papers


def build(
    title: str, abstract: str, n_authors: int, published: date, upvotes: int
) -> dict[str, object]:
    digest = int(hashlib.sha256(title.encode()).hexdigest(), 16)
    arxiv_id = f"{published:%y%m}.{digest % 90000 + 10000:05d}"
    names: list[str] = []
    k = 0
    while len(names) < min(n_authors, 12):
        # The same name twice on one paper would look like a bug: skip repeats.
        first = FIRST[(digest >> (4 * k)) % len(FIRST)]
        name = f"{first} {LAST[(digest >> (4 * k + 2)) % len(LAST)]}"
        if name not in names:
            names.append(name)
        k += 1
    lowered = f"{title} {abstract}".lower()
    cats = ["cs.CL"]
    if any(w in lowered for w in ("image", "visual", "vision", "3d", "multimodal", "video")):
        cats.insert(0, "cs.CV")
    if any(w in lowered for w in ("reinforcement", "optimization", "reward", "policy")):
        cats.append("cs.LG")
    if "safety" in lowered or "alignment" in lowered:
        cats.append("cs.AI")
    return {
        "id": arxiv_id,
        "title": title,
        "abstract": abstract,
        "authors": names,
        "categories": cats,
        "published_at": published.isoformat(),
        "hf_daily_date": published.isoformat(),
        "upvotes": upvotes,
    }


def main() -> None:
    source = Path(sys.argv[1])
    papers = parse(source.read_text(encoding="utf-8"))
    out = {
        "about": (
            "Demo papers for `paperboy demo`, derived from a saved Hugging Face Daily Papers "
            "search page for 'alignment' (titles, abstracts, dates, upvotes and author counts "
            "as shown there). arXiv ids, author names and categories are NOT real: the page "
            "does not show them, so tools/make_demo_data.py fills them in plausibly and "
            "deterministically. Do not cite these ids. `paperboy demo` links each paper to an "
            "arXiv title search instead of its made-up id, and moves the dates so the newest "
            "paper is from today (every README example then answers as shown)."
        ),
        "papers": papers,
    }
    target = Path(__file__).resolve().parents[1] / "bot" / "data" / "demo_papers.json"
    target.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(papers)} papers -> {target}")


if __name__ == "__main__":
    main()
