"""The HTTP layer every source uses: retries, backoff, 429 waits, arXiv's throttle.

Faults are served by httpx.MockTransport; sleep and clock are injected, so the waits a real
run would make are recorded instead of slept.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest

from bot.errors import SourceError
from bot.retry_after import retry_after
from bot.sources.http import Http, Throttle

URL = "http://source.test/api/daily_papers"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """An injected sleep that records each wait and moves a fake clock."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def scripted(*steps: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering each request with the next step (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        step = steps[min(len(seen), len(steps) - 1)]
        seen.append(request)
        if isinstance(step, Exception):
            raise step
        return step

    return handler, seen


def make_http(handler: Handler, rec: Recorder, retries: int = 3, **kw: object) -> Http:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Http(client, "hf", retries=retries, sleep=rec.sleep, rng=lambda: 0.0, **kw)  # type: ignore[arg-type]


async def test_5xx_is_retried_with_exponential_backoff_then_succeeds() -> None:
    rec = Recorder()
    handler, seen = scripted(
        httpx.Response(502), httpx.Response(503), httpx.Response(500), httpx.Response(200, json=[])
    )
    response = await make_http(handler, rec).get(URL)
    assert response.status_code == 200
    assert len(seen) == 4
    assert rec.waits == [0.5, 1.0, 2.0]  # base 1 s doubling; jitter (rng=0) halves


async def test_jitter_spreads_the_wait() -> None:
    rec = Recorder()
    handler, _ = scripted(httpx.Response(500), httpx.Response(200))
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    http = Http(client, "hf", retries=1, sleep=rec.sleep, rng=lambda: 1.0)
    await http.get(URL)
    assert rec.waits == [1.0]


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (httpx.ReadTimeout("read timed out"), "timed out"),
        (httpx.ConnectError("connection refused"), "connection failed"),
        (httpx.RemoteProtocolError("peer closed connection"), "connection failed"),
        (httpx.Response(503), "HTTP 503"),
    ],
    ids=["timeout", "refused", "reset", "503"],
)
async def test_persistent_fault_gives_up_with_a_clear_error(
    fault: httpx.Response | Exception, says: str
) -> None:
    rec = Recorder()
    handler, seen = scripted(fault)
    with pytest.raises(SourceError, match=f"hf: {says}.* after 3 attempts"):
        await make_http(handler, rec, retries=2).get(URL)
    assert len(seen) == 3
    assert len(rec.waits) == 2


def _caused_by(cause: OSError) -> httpx.ConnectError:
    try:
        raise httpx.ConnectError(str(cause)) from cause
    except httpx.ConnectError as exc:
        return exc


@pytest.mark.parametrize(
    ("cause", "says"),
    [
        (
            socket.gaierror(-2, "Name or service not known"),
            "cannot reach source.test (DNS): are you offline?",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "cannot reach source.test: connection refused",
        ),
    ],
    ids=["dns", "refused"],
)
async def test_no_dns_or_nothing_listening_fails_at_once_in_plain_words(
    cause: OSError, says: str
) -> None:
    # Offline, five retries with backoff only make the user wait for the same answer.
    rec = Recorder()
    handler, seen = scripted(_caused_by(cause))
    with pytest.raises(SourceError) as info:
        await make_http(handler, rec, retries=4).get(URL)
    assert str(info.value) == f"hf: {says}"
    assert len(seen) == 1 and rec.waits == []


async def test_timeout_then_success() -> None:
    rec = Recorder()
    handler, _ = scripted(httpx.ConnectTimeout("slow"), httpx.Response(200, json=[1]))
    response = await make_http(handler, rec).get(URL)
    assert response.json() == [1]


async def test_429_waits_for_retry_after() -> None:
    rec = Recorder()
    handler, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=[])
    )
    await make_http(handler, rec).get(URL)
    assert rec.waits == [7.0]
    assert len(seen) == 2


async def test_429_waits_for_hf_ratelimit_t() -> None:
    rec = Recorder()
    handler, _ = scripted(
        httpx.Response(
            429,
            headers={
                "RateLimit": '"api";r=0;t=42',
                "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
            },
        ),
        httpx.Response(200, json=[]),
    )
    await make_http(handler, rec).get(URL)
    assert rec.waits == [42.0]


async def test_429_asking_for_too_long_fails_now() -> None:
    rec = Recorder()
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(SourceError, match="rate limited.*3600"):
        await make_http(handler, rec, max_wait=300.0).get(URL)
    assert rec.waits == [] and len(seen) == 1


async def test_429_without_a_wait_backs_off() -> None:
    rec = Recorder()
    handler, _ = scripted(httpx.Response(429), httpx.Response(200))
    await make_http(handler, rec).get(URL)
    assert rec.waits == [0.5]


async def test_4xx_is_handed_back_without_retrying() -> None:
    rec = Recorder()
    handler, seen = scripted(httpx.Response(404))
    response = await make_http(handler, rec).get(URL)
    assert response.status_code == 404 and len(seen) == 1 and rec.waits == []


def test_retry_after_as_http_date() -> None:
    from datetime import UTC, datetime

    response = httpx.Response(503, headers={"Retry-After": "Fri, 12 Jun 2026 12:00:30 GMT"})
    assert retry_after(response.headers, now=datetime(2026, 6, 12, 12, 0, tzinfo=UTC)) == 30.0
    assert retry_after(httpx.Response(503).headers) is None


async def test_throttle_spaces_requests_by_the_interval() -> None:
    rec = Recorder()
    times: list[float] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        times.append(rec.now)
        rec.now += 0.5  # the request itself takes half a second
        return httpx.Response(200)

    throttle = Throttle(3.0, clock=rec.clock, sleep=rec.sleep)
    http = make_http(handler, rec, throttle=throttle)
    for _ in range(3):
        await http.get(URL)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [3.5, 3.5]  # 0.5 s request + 3 s pause, never less
    assert rec.waits == [3.0, 3.0]


async def test_throttle_applies_to_retries_too() -> None:
    rec = Recorder()
    times: list[float] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        times.append(rec.now)
        return httpx.Response(503) if len(times) == 1 else httpx.Response(200)

    http = make_http(handler, rec, throttle=Throttle(3.0, clock=rec.clock, sleep=rec.sleep))
    await http.get(URL)
    assert times[1] - times[0] >= 3.0


# ------------------------------------------------------------------- response size cap


class _Endless(httpx.AsyncByteStream):
    """A body of 1 MB chunks that never ends; counts what was produced."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self):
        while True:
            self.sent += 1
            yield b"x" * 1_000_000


async def test_a_response_over_the_cap_is_refused_while_streaming() -> None:
    body = _Endless()
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _request: httpx.Response(200, stream=body))
    )
    http = Http(client, "Hugging Face", retries=0, max_bytes=5_000_000)
    with pytest.raises(SourceError, match="larger than 5 MB"):
        await http.get("https://huggingface.co/api/daily_papers")
    assert body.sent <= 6  # stopped reading at the cap, not at the end (there is none)


async def test_a_gzip_bomb_is_measured_after_decompression() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * 50_000_000)  # 50 MB of zeros in ~50 kB
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda _request: httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})
        )
    )
    http = Http(client, "arXiv", retries=0, max_bytes=10_000_000)
    with pytest.raises(SourceError, match="larger than 10 MB"):
        await http.get("https://export.arxiv.org/api/query")


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda _request: httpx.Response(
                200, content=b"{}", headers={"Content-Length": "300000000"}
            )
        )
    )
    with pytest.raises(SourceError, match="max_response_mb"):
        await Http(client, "Hugging Face", retries=0).get("https://huggingface.co/x")


async def test_a_response_under_the_cap_is_read_whole() -> None:
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _request: httpx.Response(200, json={"ok": [1] * 1000}))
    )
    response = await Http(client, "Hugging Face", max_bytes=1_000_000).get("https://hf.co/x")
    assert response.json() == {"ok": [1] * 1000}
