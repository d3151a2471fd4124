"""A reporting date nobody has asked for yet: the page says it is computing and fills in without a reload
(issue 16, target 3; ``parity.web.computing``). Behaviour only: a computation is held at a known point with
``computing.before_step``, never timed.

* without JavaScript: "Computing figures for <date>" with a link to the figures, which shows them once done;
* in Chromium (1366x768): the same page fills in by itself, the page is never reloaded (a value set on the
  window survives), its charts are drawn, nothing leaves the server and nothing fails;
* one computation per (data version, choice, measure, date), however many pages ask.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from test_browser import chromium, sign_in, watched_page  # noqa: F401 - chromium is a fixture used here
from webkit import ICB, WebWorld, bearer, settings_for

from parity.web import computing, create_app


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[int]]]:
    """Background computations wait at their first step until the event is set; counts the steps started."""
    gate = threading.Event()
    started: list[int] = []

    def hold() -> None:
        started.append(1)
        assert gate.wait(60), "the test never let the computation go on"

    monkeypatch.setattr(computing, "before_step", hold)
    monkeypatch.setattr(computing, "FILL_WAIT_SECONDS", 0.5)
    yield gate, started
    gate.set()


def _org_url(as_of: date) -> str:
    return f"/orgs/icb/{ICB}?as_of={as_of.isoformat()}"


def test_computing_page_then_the_figures_without_javascript(duckdb_world: WebWorld, client_for,  # noqa: ANN001
                                                            held: tuple[threading.Event, list[int]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    gate, started = held
    client = client_for(duckdb_world)
    monkeypatch.setattr(client.app.state.parity, "compute_wait", 0.05)  # as parity serve: do not hold the page
    headers = bearer(duckdb_world, "icb1")
    url = _org_url(date(2025, 10, 31))
    first = client.get(url, headers=headers)
    assert first.status_code == 200
    assert "Computing figures for 31 October 2025" in first.text
    assert 'http-equiv="refresh"' not in first.text.lower()  # fills in by script, never by reloading
    assert f'href="{url}"' in first.text.replace("&amp;", "&")  # the way without JavaScript
    again = client.get(url, headers=headers)  # a second person asking does not start a second computation
    assert "Computing figures" in again.text
    assert len(started) == 1
    gate.set()
    filled = client.get(url, headers={**headers, computing.FILL_HEADER: "1"})
    for _ in range(20):
        if "Computing figures" not in filled.text:
            break
        filled = client.get(url, headers={**headers, computing.FILL_HEADER: "1"})
    assert filled.status_code == 200
    assert "Computing figures" not in filled.text
    assert 'id="chart-quarterly"' in filled.text
    assert client.get(url, headers=headers).text.count("Computing figures") == 0


def test_a_bad_address_is_an_error_not_a_computation(duckdb_world: WebWorld, client_for,  # noqa: ANN001
                                                     held: tuple[threading.Event, list[int]]) -> None:
    client = client_for(duckdb_world)
    r = client.get(f"/orgs/county/{ICB}?as_of=2025-07-31", headers=bearer(duckdb_world, "icb1"))
    assert r.status_code == 400
    assert held[1] == []


@pytest.fixture
def serving(duckdb_world: WebWorld) -> Iterator[str]:
    """The app as ``parity serve`` runs it (a page does not wait for figures), on a free 127.0.0.1 port."""
    import uvicorn

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    app = create_app(settings_for(duckdb_world), compute_wait=computing.WAIT_SECONDS)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_computing_page_fills_in_without_a_reload(chromium: Any, serving: str,  # noqa: F811
                                                  held: tuple[threading.Event, list[int]]) -> None:
    gate, _ = held
    live_server = serving
    contexts: list[Any] = []
    try:
        page, watch = watched_page(chromium, live_server, {"width": 1366, "height": 768}, contexts)
        sign_in(page, live_server, "icb1")
        page.goto(live_server + _org_url(date(2025, 8, 31)))

        assert "Computing figures for 31 August 2025" in page.locator("main h1").inner_text()
        page.evaluate("window.parityNotReloaded = 42")
        gate.set()
        page.wait_for_selector('main[data-filled="true"]')
        assert "Computing figures" not in page.locator("main h1").inner_text()
        assert page.evaluate("window.parityNotReloaded") == 42  # the same document: filled in, not reloaded
        assert page.url.endswith(_org_url(date(2025, 8, 31)))
        page.wait_for_selector('#chart-quarterly[data-rendered="true"]')
        assert "Computing figures" not in page.title()
        watch.assert_clean()
    finally:
        for context in contexts:
            context.close()
