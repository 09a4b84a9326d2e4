"""A child process for tests/adapters/test_followups.py: one digest tick on a shared store,
posting to the fake Slack Web API at BASE_URL, SIGKILLed at one step of a follow-up:

- `claimed`: the reply was taken (claimed) by this process, nothing posted;
- `attempt`: its attempt was committed, the post not made;
- `posted`: Slack took the reply, the ledger was not told.

Usage: python tests/adapters/followup_child.py DB_URL BASE_URL STAGE NOW
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from adapters.slack import SlackAdapter  # noqa: E402
from bot import followup_ledger  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.db import make_engine  # noqa: E402
from bot.ports import Outbox  # noqa: E402
from bot.service import BotService  # noqa: E402
from bot.store import PaperStore  # noqa: E402


def die_after(name: str) -> None:
    """Kill this process right after FollowUpLedger.`name` returns (committed)."""
    method = getattr(followup_ledger.FollowUpLedger, name)

    @wraps(method)
    def then_die(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        if result:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(followup_ledger.FollowUpLedger, name, then_die)


def die_before(name: str) -> None:
    """Kill this process when FollowUpLedger.`name` is called (before it writes)."""

    def die(*_args: Any, **_kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(followup_ledger.FollowUpLedger, name, die)


async def tick(url: str, base_url: str, now: datetime) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test"}
    base = Settings.load(None, env)
    settings = base.model_copy(
        update={"slack": base.slack.model_copy(update={"api_base_url": base_url})}
    )
    service = BotService(settings, PaperStore(make_engine(url)), clock=lambda: now)
    adapter = SlackAdapter(service, settings)
    await service.deliver_due(Outbox({"slack": adapter}), now)


def main() -> None:
    url, base_url, stage, now = sys.argv[1:5]
    if stage == "claimed":
        die_after("take_due")
    elif stage == "attempt":
        die_after("begin_attempt")
    else:
        die_before("sent")
    asyncio.run(tick(url, base_url, datetime.fromisoformat(now)))
    raise SystemExit("the tick should have killed this process")


if __name__ == "__main__":
    main()
