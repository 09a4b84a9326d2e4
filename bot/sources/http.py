"""HTTP for every source: one shared httpx.AsyncClient, retries, backoff, 429, throttling.

`Http.get` retries what is worth retrying (timeouts, connection errors, 5xx, 429) with
exponential backoff and jitter, honours `Retry-After` and Hugging Face's `RateLimit: ...;t=<s>`
header, and gives up with a `SourceError` that says what happened. Other statuses (404, the
arXiv API's 400 error feed) are handed back to the caller, which knows what they mean.

`Throttle` keeps arXiv's rule: at most one request every `min_interval` seconds, one at a time.
Sleep, clock and randomness are injected so tests never wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from bot.errors import SourceError
from bot.reachability import describe, is_unreachable_now
from bot.retry_after import retry_after

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

USER_AGENT = "paperboy/0.1 (research papers chat bot; https://github.com/paperboy)"
# A source response bigger than this is refused (Hugging Face's biggest real pages are a few MB).
DEFAULT_MAX_BYTES = 32_000_000


def make_client(timeout_seconds: float = 20.0, **kwargs: Any) -> httpx.AsyncClient:
    """The one AsyncClient the sources share (the caller closes it)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
        **kwargs,
    )


class Throttle:
    """At most one request per `min_interval` seconds, and one at a time."""

    def __init__(
        self, min_interval: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._last: float | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        if self._last is not None:
            wait = self._last + self.min_interval - self._clock()
            if wait > 0:
                await self._sleep(wait)

    async def __aexit__(self, *exc: object) -> None:
        # Measured from the end of the request: arXiv counts the gap between requests.
        self._last = self._clock()
        self._lock.release()


class Http:
    """GET with retries over a shared client. One instance per source (its name in errors)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        source: str,
        *,
        retries: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_wait: float = 300.0,
        throttle: Throttle | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.client = client
        self.max_bytes = max_bytes
        self.source = source
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_wait = max_wait  # a 429 asking for longer than this fails now instead
        self.throttle = throttle
        self._sleep = sleep
        self._rng = rng

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random (attempt 0 -> ~1 s)."""
        delay = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return delay / 2 + self._rng() * delay / 2

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The response to GET `url` with status < 500 and not 429, after retries.

        Raises SourceError when every attempt failed (the message names the last cause).
        """
        problem = ""
        for attempt in range(self.retries + 1):
            wait: float | None = None
            try:
                response = await self._send(url, params, headers)
            except httpx.TimeoutException:
                problem = f"timed out: {_host(url)} did not answer in time"
            except httpx.TransportError as exc:
                problem = (
                    describe(_host(url), exc)
                    if is_unreachable_now(exc)
                    else f"connection failed ({type(exc).__name__}) at {_host(url)}"
                )
                if is_unreachable_now(exc):
                    # No DNS answer or nothing listening: asking again at once gets the same
                    # answer, and an offline user would wait through every backoff.
                    raise SourceError(f"{self.source}: {problem}") from None
            else:
                status = response.status_code
                if status == 429 or status >= 500:
                    problem = f"HTTP {status}"
                    wait = retry_after(response.headers)  # seconds, HTTP date or RateLimit t=
                    if status == 429 and wait is not None and wait > self.max_wait:
                        raise SourceError(
                            f"{self.source}: rate limited (HTTP 429), asked to wait {wait:.0f} s; "
                            "will try again on the next refresh"
                        )
                else:
                    return response
            if attempt == self.retries:
                break
            # The server's own wait wins when it gives one; otherwise back off.
            await self._sleep(wait if wait is not None else self.backoff(attempt))
        tries = self.retries + 1
        raise SourceError(
            f"{self.source}: {problem} after {tries} attempt{'s' if tries > 1 else ''}: {url}"
        )

    async def _send(
        self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        if self.throttle is None:
            return await self._request(url, params, headers)
        async with self.throttle:
            return await self._request(url, params, headers)

    async def _request(
        self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        # Read the whole body inside the retry loop: a reset mid-body is retried too. It is
        # streamed and counted after decompression, so neither a huge body nor a gzip bomb
        # gets past `max_bytes` into memory.
        async with self.client.stream("GET", url, params=params, headers=headers) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large(url)
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_large(url)
                chunks.append(chunk)
            # What `Response.aread` itself stores; `.content`/`.text`/`.json()` read it.
            response._content = b"".join(chunks)
        return response

    def _too_large(self, url: str) -> SourceError:
        return SourceError(
            f"{self.source}: response larger than {self.max_bytes / 1_000_000:.0f} MB "
            f"(limit [sources] max_response_mb): {url}"
        )


def _host(url: str) -> str:
    return httpx.URL(url).host or url


def expect_ok(response: httpx.Response, source: str) -> None:
    """Any status other than 2xx here is a failure of the source."""
    if not response.is_success:
        raise SourceError(
            f"{source}: HTTP {response.status_code} from {response.request.url}: "
            f"{response.text[:200]!r}"
        )
