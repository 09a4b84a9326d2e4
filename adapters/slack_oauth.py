"""Slack OAuth storage: slack_sdk's SQLAlchemy installation and state stores on paperboy's own
database, made usable by bolt's `AsyncApp`.

slack_sdk's async variants need an async engine (another driver); the sync ones run in a
worker thread instead, so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, MetaData

STATE_EXPIRY = 600  # seconds an OAuth `state` stays valid (single use)


class InstallationStore(SQLAlchemyInstallationStore, AsyncInstallationStore):
    """Installations (one bot token per workspace), async through a worker thread."""

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await asyncio.to_thread(
            self.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            self.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )


class OAuthStateStore(SQLAlchemyOAuthStateStore, AsyncOAuthStateStore):
    """The OAuth `state` values (single-use, expiring), async through a worker thread."""

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.issue, *args, **kwargs)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.consume, state)


class OAuthStores(NamedTuple):
    installations: InstallationStore
    states: OAuthStateStore


def open_oauth_stores(engine: Engine, client_id: str) -> OAuthStores:
    """Both stores on `engine`, their tables created if missing."""
    installations = InstallationStore(
        client_id=client_id,
        engine=engine,
        bots_table_name="slack_bots",
        installations_table_name="slack_installations",
    )
    states = OAuthStateStore(
        expiration_seconds=STATE_EXPIRY, engine=engine, table_name="slack_oauth_states"
    )
    for metadata in (installations.metadata, states.metadata):
        _create(metadata, engine)
    return OAuthStores(installations, states)


def _create(metadata: MetaData, engine: Engine) -> None:
    metadata.create_all(engine)
