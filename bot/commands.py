"""The `/papers` command set: one registry, one text grammar, the help generated from it.

Slack sends the text after `/papers`; the console types the same text; Discord builds it from
typed options with `build_text`. `/papers help`, the README table and every adapter's
registration come from `COMMANDS`, so the platforms cannot drift apart. A command is one
`CommandSpec` here and one handler (`paper_commands`, `channel_commands`): see
docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.catchup import do_catchup
from bot.channel_commands import (
    do_digest,
    do_followups,
    do_list,
    do_schedule,
    do_status,
    do_subscribe,
    do_unsubscribe,
)
from bot.command_context import CommandSpec, Context, Example, Option
from bot.ids import parse_arxiv_id
from bot.like_commands import do_like
from bot.messages import Reply, info
from bot.paper_commands import TOP_PERIODS, do_paper, do_search, do_top
from bot.taste_commands import do_taste
from bot.topic_preview import NARROW_ABOVE
from bot.watches import MAX_WATCHES, do_unwatch, do_watch, do_watches

__all__ = ["COMMANDS", "PAPER", "SEARCH", "CommandSpec", "Option", "build_text", "parse_text"]

MAX_INPUT = 2_000  # longer text is cut: Slack allows 4,000 characters after the command
SEARCH = "search"
PAPER = "paper"


def parse_text(text: str) -> tuple[str, str]:
    """`subscribe dpo` -> ("subscribe", "dpo"); `dpo` -> ("search", "dpo").

    A first word that is a command name is that command; an arXiv id or URL is a paper
    lookup; anything else is a search.
    """
    text = " ".join(text.replace("\x00", " ").split())[:MAX_INPUT]
    if not text:
        return "help", ""
    first, _, rest = text.partition(" ")
    name = first.lower()
    if name in COMMANDS and name not in (SEARCH, PAPER):
        return name, rest.strip()
    if parse_arxiv_id(text) is not None:
        return PAPER, text
    if name == SEARCH:
        return SEARCH, rest.strip()
    return SEARCH, text


def build_text(name: str, options: Mapping[str, object]) -> str:
    """The text grammar from typed options, in the order the spec declares them."""
    spec = COMMANDS[name]
    parts = [] if name in (SEARCH, PAPER) else [name]
    if name == SEARCH:
        parts.append(SEARCH)
    for option in spec.options:
        value = options.get(option.name)
        if value is not None and str(value).strip():
            parts.append(str(value).strip())
    return " ".join(parts)


async def do_help(_ctx: Context, text: str) -> Reply:
    wanted = text.strip().lower()
    if wanted in COMMANDS:
        spec = COMMANDS[wanted]
        examples = "\n".join(f"`/papers {e.text}`" for e in spec.examples)
        more = f"\n{FILTERS_EXPLAINED}\n{SEARCH_EXPLAINED}" if spec.name == SEARCH else ""
        more = f"\n{SUBSCRIBE_EXPLAINED}" if spec.name == "subscribe" else more
        more = f"\n{LIKE_EXPLAINED}" if spec.name == "like" else more
        more = f"\n{DIGEST_EXPLAINED}" if spec.name == "digest" else more
        return info(f"/papers {spec.usage}", f"{spec.summary}\n{examples}{more}")
    return info("paperboy: research papers in chat", help_text())


FILTERS_EXPLAINED = (
    "Filters: has:code, has:project, stars:>=100 (GitHub stars; also stars:>100, stars:<10), "
    "org:NAME (Hugging Face organisation), kw:TERM (AI keyword), venue:neurips, "
    'venue:neurips2025 or venue:"ICLR 2025" (where it was accepted); each combines with words, '
    "OR and -, or stands alone: `has:code stars:>=100`."
)
SEARCH_EXPLAINED = (
    'How search finds papers: acronyms work both ways (`llm` also finds "large language '
    'models", `vision language models` also finds "VLMs"), plurals and hyphens too '
    '(`kv cache` finds "KV-cache" and "key-value cache"). Papers where your words '
    "stand together, in the title first, come before papers where they are scattered. A "
    "single word (`alignment`) ranks first the papers on what its best matches share, the "
    "sense your store mostly means. When few papers have all your words, the list goes on "
    "with papers that have most of them, after every full match, and the footer says so."
)

LIKE_EXPLAINED = (
    "Nearest means: sharing the paper's most distinctive words (rare in the store, frequent in "
    "the paper) in the title, Hugging Face keywords and abstract, acronyms and their spelled-out "
    "forms counted as one. With several papers, words they share count most. `since:`/`until:` "
    "narrow the dates; `sort:new` shows the newest of the 30 nearest first. Every paper card has a "
    '"More like this" button that does the same for that paper, shown only to you.'
)

SUBSCRIBE_EXPLAINED = (
    "The answer previews the topic over the last four weeks: about how many papers a week, "
    "the busiest day, and the three best examples. When its busiest day passed "
    f"{NARROW_ABOVE} papers, it suggests narrowing the topic with a filter (has:code, "
    "stars:>=N, org:, kw:, venue:; see `/papers help search`). `/papers list` shows each "
    "topic's papers a week."
)

DIGEST_EXPLAINED = (
    "Relevance floor: a paper gets into a digest only if it is clearly about one of the "
    "channel's topics, not if it mentions it in passing: the topic must weigh at least a "
    "quarter as much in it as in the best paper the store has on that topic (title, keywords "
    "and abstract together), or its abstract alone must be at least 60% as much about it as "
    "the best abstract. So a quiet day posts fewer papers rather than filler. Topics of "
    "filters only (`has:code stars:>=100`) and --hf-top have no floor. On paperboy's judged "
    "set (54 researcher queries over real papers) this keeps 94% of the papers judged "
    "relevant and leaves out 66% of those judged not about the query."
)
WORKED_EXAMPLE = (
    "A digest teams keep: `/papers subscribe alignment` previews the topic (papers a week, "
    "busiest day, examples); if that is a lot, narrow it: `/papers unsubscribe alignment`, "
    "`/papers subscribe alignment has:code stars:>=10`; then set the budget: `/papers digest "
    "max 5`, `/papers digest min-upvotes 3`; `/papers list` shows it all, `/papers catchup 2w` "
    "what you missed."
)


def help_text() -> str:
    lines = [f"`/papers {spec.usage}`: {spec.summary}" for spec in COMMANDS.values()]
    lines.append(
        'Search syntax: words (all must match), "exact phrase", OR, -exclude, author:name, '
        "cat:cs.CL, since:2024-06-01 or since:7d, until:, upvotes:>=10, sort:relevance|new|top."
    )
    lines.append(FILTERS_EXPLAINED)
    lines.append(SEARCH_EXPLAINED)
    lines.append(WORKED_EXAMPLE)
    return "\n".join(lines)


SCHEDULE_KINDS = ("daily", "weekdays", "weekly", "off")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            SEARCH,
            "Search the paper store (any text that is not a command is a search).",
            "<query>",
            (
                Example("dpo", "Direct Preference Optimization"),
                Example('"reward model" -survey', "Secretly a Reward Model"),
                Example("author:rafailov since:2023-01-01 sort:top", "Rafael Rafailov"),
                Example("preference has:code stars:>=1000", "Direct Preference Optimization"),
                Example("venue:neurips2023 org:stanford", "Direct Preference Optimization"),
                Example('kw:"preference optimization"', "Direct Preference Optimization"),
                Example("diffusion has:project", "Diffusion models for protein design"),
            ),
            do_search,
            (Option("query", "What to search for", required=True),),
        ),
        CommandSpec(
            PAPER,
            "One paper in detail, by arXiv id or arxiv.org / huggingface.co link.",
            "<arXiv id or URL>",
            (
                Example("2305.18290", "Direct Preference Optimization"),
                Example("https://huggingface.co/papers/2305.18290", "Rafael Rafailov"),
            ),
            do_paper,
            (Option("id", "arXiv id or link, e.g. 2305.18290", required=True),),
        ),
        CommandSpec(
            "like",
            "Papers like one paper (or like up to 10 together), nearest first or newest first.",
            "like <arXiv id or URL> [more ids] [since:...] [sort:relevance|new]",
            (
                Example("like 2305.18290", "Preference tuning without reinforcement learning"),
                Example(
                    "like https://arxiv.org/abs/2305.18290 since:30d sort:new",
                    "Papers like Direct Preference Optimization",
                ),
                Example("like 2305.18290 2401.00001", "Papers like all of these 2 papers"),
            ),
            do_like,
            (
                Option("ids", "arXiv ids or links (up to 10), e.g. 2305.18290", required=True),
                Option("filters", "Dates, e.g. since:30d or since:2024-06-01 until:2025-01-01"),
                Option("sort", "Order", choices=("sort:relevance", "sort:new")),
            ),
        ),
        CommandSpec(
            "top",
            "Most upvoted recent papers on Hugging Face.",
            "top [day|week|month]",
            (
                Example("top", "Top papers today"),
                Example("top week", "Preference tuning without reinforcement learning"),
            ),
            do_top,
            (Option("period", "Which period", choices=tuple(TOP_PERIODS)),),
        ),
        CommandSpec(
            "subscribe",
            "Add a topic to this channel's digest and preview its last four weeks (--hf-top: "
            "top HF papers).",
            "subscribe <query>",
            (
                Example("subscribe dpo", "Subscribed this channel to dpo"),
                Example("subscribe dpo", "about 0.5 papers a week (busiest day: 2)"),
                Example('subscribe "diffusion model" cat:cs.CV', "Digests come Monday to Friday"),
                Example("subscribe --hf-top", "the top of each day's Hugging Face"),
            ),
            do_subscribe,
            (Option("query", "A search whose new papers go into the digest", True),),
            manages_channel=True,
        ),
        CommandSpec(
            "unsubscribe",
            "Remove a topic, by its text or its number in `list`.",
            "unsubscribe <query or number>",
            (
                Example("unsubscribe dpo", "No topics left", after=("subscribe dpo",)),
                Example(
                    "unsubscribe 2",
                    "Unsubscribed this channel from rlhf",
                    after=("subscribe dpo", "subscribe rlhf"),
                ),
            ),
            do_unsubscribe,
            (Option("topic", "The topic or its number", True, autocomplete="topics"),),
            manages_channel=True,
        ),
        CommandSpec(
            "list",
            "This channel's topics (each with its papers a week), digest schedule and next digest.",
            "list",
            (Example("list", "1. dpo · about 0.5 papers a week", after=("subscribe dpo",)),),
            do_list,
        ),
        CommandSpec(
            "schedule",
            "When digests come: daily, weekdays, weekly <day>, or off; HH:MM and a time zone.",
            "schedule daily|weekdays|weekly <day>|off [HH:MM] [Area/City]",
            (
                Example("schedule daily 09:00 Europe/Berlin", "every day at 09:00 Europe/Berlin"),
                Example("schedule weekly mon 08:30", "Next digest: Mon"),
                Example("schedule off", "Digests are off for this channel."),
            ),
            do_schedule,
            (
                Option("kind", "How often", True, choices=SCHEDULE_KINDS),
                Option("day", "Day, for weekly", choices=WEEKDAYS),
                Option("time", "Time of day, HH:MM"),
                Option("timezone", "IANA time zone, e.g. Europe/Berlin", autocomplete="timezones"),
            ),
            manages_channel=True,
        ),
        CommandSpec(
            "digest",
            "Preview this channel's next digest, post it, or set its noise budget. `post` posts "
            "it now; `resend` posts again papers whose post had an unknown outcome; `max N`: "
            'at most N papers a digest (1-30, the rest as "+N more"); `min-upvotes N`: only '
            "papers with N+ Hugging Face upvotes (papers not on Hugging Face have 0); `quiet on`: "
            "a day with no paper that passes posts nothing (off: one line saying so).",
            "digest [post | resend | max N | min-upvotes N | quiet on|off]",
            (
                Example("digest", "Direct Preference Optimization", after=("subscribe dpo",)),
                Example("digest post", "Posted this channel's digest", after=("subscribe dpo",)),
                Example("digest max 5", "at most 5 papers a digest", after=("subscribe dpo",)),
                Example("digest min-upvotes 3", "3+ Hugging Face upvotes"),
                Example("digest quiet on", "Quiet mode on."),
            ),
            do_digest,
            (
                Option(
                    "action",
                    "Post now, resend unknown posts, or set the budget: max, min-upvotes, quiet",
                    choices=("post", "resend", "max", "min-upvotes", "quiet on", "quiet off"),
                ),
                Option("value", "The number, for max (1-30) or min-upvotes (0-1000)"),
            ),
        ),
        CommandSpec(
            "taste",
            "What this channel's 👍/👎 reactions taught its digest ranking; `reset` forgets it "
            "(channel managers).",
            "taste [reset]",
            (
                Example("taste", "Nothing learned yet in this channel."),
                Example("taste reset", "Nothing to forget"),
            ),
            do_taste,
            (Option("action", "reset: forget what the reactions taught", choices=("reset",)),),
        ),
        CommandSpec(
            "watch",
            "Watch a search for yourself: its new papers come by direct message, once a day.",
            "watch <query>",
            (
                Example("watch author:rafailov", "Watching author:rafailov for you."),
                Example("watch dpo has:code", "direct message with the new papers"),
            ),
            do_watch,
            (Option("query", "A search whose new papers you get by direct message", True),),
        ),
        CommandSpec(
            "watches",
            f"Your own watches (up to {MAX_WATCHES}), numbered; a time and zone set when the "
            "daily DM comes.",
            "watches [at HH:MM [Area/City]]",
            (
                Example("watches", "1. author:rafailov", after=("watch author:rafailov",)),
                Example("watches at 18:30 America/New_York", "daily after 18:30 America/New_York"),
            ),
            do_watches,
            (
                Option("time", "When your daily message comes, HH:MM"),
                Option("timezone", "IANA time zone, e.g. Europe/Berlin", autocomplete="timezones"),
            ),
        ),
        CommandSpec(
            "unwatch",
            "Stop one of your watches, by its number in `watches` or its text.",
            "unwatch <number or query>",
            (
                Example("unwatch 1", "No watches left", after=("watch author:rafailov",)),
                Example("unwatch dpo", "Stopped watching dpo", after=("watch rlhf", "watch dpo")),
            ),
            do_unwatch,
            (Option("watch", "The watch or its number", True, autocomplete="watches"),),
        ),
        CommandSpec(
            "followups",
            "Thread replies when a posted paper gets code, a new version, a venue or many upvotes "
            "(default on).",
            "followups on|off",
            (
                Example("followups off", "Follow-ups are off for this channel."),
                Example("followups on", "Follow-ups are on", after=("followups off",)),
                Example("followups", "Follow-ups: off", after=("followups off",)),
            ),
            do_followups,
            (Option("state", "on or off", choices=("on", "off")),),
        ),
        CommandSpec(
            "catchup",
            "The best papers on this channel's topics over a period, shown only to you (back "
            "from a break); the channel's digests are unchanged.",
            "catchup [7d|2w]",
            (
                Example("catchup", "Direct Preference Optimization", after=("subscribe dpo",)),
                Example("catchup 2w", "in the last 2 weeks", after=("subscribe dpo",)),
            ),
            do_catchup,
            (Option("period", "How far back: 7d (default), 2w, up to 30d"),),
        ),
        CommandSpec(
            "status",
            "How many papers the store has and how its sources are doing.",
            "status",
            (Example("status", "4 papers in the store."),),
            do_status,
        ),
        CommandSpec(
            "help",
            "This help, or help on one command.",
            "help [command]",
            (
                Example("help", "/papers subscribe <query>"),
                Example("help schedule", "/papers schedule weekly mon 08:30"),
                Example("help digest", "Relevance floor: a paper gets into a digest only if"),
                Example("help", "narrow it: `/papers unsubscribe alignment`"),
            ),
            do_help,
            (Option("command", "A command name"),),
        ),
    )
}
