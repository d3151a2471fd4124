"""The vendored front-end assets, the base layout and the macros, in a real browser.

The page is ``templates/base.html`` itself (rendered with Jinja2) holding three charts from ``parity.web.charts``.
It is served from 127.0.0.1 with the app's Content-Security-Policy and opened in Debian's Chromium (never a
Playwright-downloaded browser). Every request that is not to 127.0.0.1 is aborted and recorded: the page must
make none, log no console errors, and draw its charts with Vega under a CSP without 'unsafe-eval'.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import pytest

from conftest import need
from parity.web import charts

WEB = Path(charts.__file__).parent
STATIC = WEB / "static"
TEMPLATES = WEB / "templates"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# The policy the app sends (parity.web.security): scripts only from this server, so no inline script and no eval.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")

PAGE = """\
{% extends "base.html" %}
{% from "macros.html" import chart, data_table, select_field %}
{% block content %}
<h1>Test page</h1>
<form method="get" action="/page.html" class="parity-pickers">
  {{ select_field("as_of", "Reporting date", [("2026-03-31", "31 March 2026"), ("2026-06-30", "30 June 2026")],
                  as_of) }}
  <button class="nhsuk-button nhsuk-button--secondary" type="submit">Show</button>
</form>
{% call chart("trend", trend, "All six over time", "Percentage of the register with all six checks.") %}
  {{ data_table(["Period", "%"], [["31 Mar 2026", "61.0"]], "Figures", numeric=[1]) }}
{% endcall %}
{{ chart("checks", checks, "Checks", "Percentage with each check done or declined.") }}
{{ chart("funnel", funnel, "Variation", "Each practice against its register size.") }}
{% endblock %}
"""

# Served at /csp-probe.html: an inline script, which the policy must block (proving the policy is in force).
CSP_PROBE = """<!DOCTYPE html><html lang="en"><head><title>probe</title></head>
<body><p id="p">static</p><script>document.getElementById("p").textContent = "inline ran";</script></body></html>
"""


def _specs() -> dict[str, Any]:
    trend = charts.trend_chart(
        [{"period": f"2026-{m:02d}-28", "percent": 50 + m, "label": "All six"} for m in range(1, 7)]
        + [{"period": f"2026-{m:02d}-28", "percent": 70 + m / 2, "label": "Blood pressure"} for m in range(1, 7)]
    )
    checks = charts.check_bars([
        {"check": "Body mass index", "percent": 81.0, "declined_percent": 2.0},
        {"check": "Blood pressure", "percent": 64.0, "declined_percent": None},
    ])
    funnel = charts.funnel_chart(
        [{"org_code": "A1", "org_name": "Practice A", "register": 120, "percent": 48.0, "band": "below_95"},
         {"org_code": "B2", "org_name": "Practice B", "register": 900, "percent": 66.0, "band": "within"}],
        [{"n": n, "lower_95": 65 - 90 / n**0.5, "upper_95": 65 + 90 / n**0.5, "lower_998": 65 - 140 / n**0.5,
          "upper_998": min(100.0, 65 + 140 / n**0.5)} for n in (20, 100, 400, 1000)],
        65.0,
    )
    return {"trend": trend, "checks": checks, "funnel": funnel}


def render_page(as_of: str = "2026-06-30") -> str:
    """The test page: base.html with user, navigation, breadcrumbs and three charts."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES)]), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    # Starlette's url_for('static', path=...) gives an absolute URL under /static; a path does the same here.
    env.globals["url_for"] = lambda name, path: f"/static/{path}"
    user = {"username": "alice", "role": "practice", "org_code": "A81001"}
    return env.from_string(PAGE).render(
        title="Test page", nav=[("Overview", "/"), ("Worklist", "/practices/A81001/worklist")], user=user,
        csrf_token="tok123", breadcrumbs=[("England", "/orgs/national/ENG"), ("North East", "/orgs/region/Y63")],
        synthetic=True, wide=False, request=None, as_of=as_of, **_specs(),
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves /page.html (re-rendered per request), /csp-probe.html and /static/* with the CSP header."""

    pages: dict[str, Path]

    def do_GET(self) -> None:  # noqa: N802 - the http.server method name
        path = urlsplit(self.path).path
        if path in self.pages:
            self._send(200, "text/html; charset=utf-8", self.pages[path].read_bytes())
            return
        if path.startswith("/static/"):
            target = (STATIC / path.removeprefix("/static/")).resolve()
            if target.is_file() and target.is_relative_to(STATIC.resolve()):
                self._send(200, self.guess_type(target), target.read_bytes())
                return
        self._send(404, "text/plain", b"not found")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    @staticmethod
    def guess_type(path: Path) -> str:
        types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
                 ".ico": "image/x-icon", ".json": "application/json"}
        return types.get(path.suffix, "application/octet-stream")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server signature
        """Quiet: the test reports what matters."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A local server on a random 127.0.0.1 port; yields its base URL."""
    page = tmp_path / "page.html"
    page.write_text(render_page(), encoding="utf-8")
    probe = tmp_path / "csp-probe.html"
    probe.write_text(CSP_PROBE, encoding="utf-8")
    handler = type("Handler", (_Handler,), {"pages": {"/page.html": page, "/csp-probe.html": probe}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def chromium(playwright: Any) -> Iterator[Any]:
    """Debian's Chromium, headless (pytest-playwright's session-wide Playwright, so other browser tests can
    share it)."""
    if not CHROMIUM.exists():
        need(f"{CHROMIUM} is not installed (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Watch:
    """What a page did: requests sent out, requests blocked for leaving 127.0.0.1, errors, failed responses."""

    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _watched_page(chromium: Any) -> tuple[Any, Watch]:
    watch = Watch()
    context = chromium.new_context()
    page = context.new_page()

    def route(r: Any) -> None:
        url = r.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            r.continue_()
        else:
            watch.blocked.append(url)
            r.abort()

    context.route("**/*", route)
    page.on("request", lambda req: watch.requested.append(req.url))
    page.on("console", lambda msg: watch.errors.append(msg.text) if msg.type == "error" else None)
    # Vega-Lite reports a spec it has to correct (a dropped channel, an invalid property) as a console warning.
    page.on("console", lambda msg: watch.warnings.append(msg.text) if msg.type == "warning" else None)
    page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
    page.on("response", lambda resp: watch.failed.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)
    return page, watch


def test_page_renders_charts_offline_under_csp(chromium: Any, server: str) -> None:
    page, watch = _watched_page(chromium)
    page.goto(f"{server}/page.html")
    for chart_id in ("trend", "checks", "funnel"):
        page.wait_for_selector(f'#{chart_id}[data-rendered="true"]', timeout=20_000)
        assert page.locator(f"#{chart_id} svg").count() >= 1, chart_id
    # The trend chart drew its data and its standards: line, points, and the two labelled rules.
    svg_html = page.inner_html("#trend")
    assert "Standard 60%" in svg_html and "Standard 75%" in svg_html
    # Tooltips evaluate Vega expressions too, through the interpreter.
    page.locator("#trend svg [aria-roledescription='point']").nth(2).hover()
    page.wait_for_selector("#vg-tooltip-element.visible", timeout=5_000)
    assert "28 Mar 2026" in page.inner_text("#vg-tooltip-element")

    page.wait_for_load_state("networkidle")
    assert watch.blocked == [], f"requests left 127.0.0.1: {watch.blocked}"
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in watch.requested if not u.startswith("data:"))
    assert watch.errors == [], watch.errors
    assert watch.warnings == [], watch.warnings
    assert watch.failed == [], watch.failed
    assert any(u.endswith("/static/vendor/vega/vega-bundle.js") for u in watch.requested)
    assert any(u.endswith("/static/vendor/nhsuk/nhsuk-frontend.min.css") for u in watch.requested)

    # NHS.UK frontend's JavaScript ran (it marks components it enhanced) and its CSS applied.
    assert page.evaluate("document.body.classList.contains('nhsuk-frontend-supported')")
    assert page.get_attribute("header.nhsuk-header", "data-nhsuk-header-init") is not None
    assert page.evaluate("getComputedStyle(document.querySelector('.nhsuk-header')).backgroundColor") \
        == "rgb(0, 94, 184)"
    # The font stack falls back to Arial: no Frutiger web font is requested from anywhere.
    assert not any(re.search(r"\.woff2?$", u) for u in watch.requested)
    page.close()


def test_autosubmit_select_submits_its_form(chromium: Any, server: str) -> None:
    page, watch = _watched_page(chromium)
    page.goto(f"{server}/page.html")
    with page.expect_navigation():
        page.select_option("#as_of", "2026-03-31")
    assert "as_of=2026-03-31" in page.url
    assert watch.blocked == [] and watch.errors == []
    page.close()


def test_csp_blocks_inline_script(chromium: Any, server: str) -> None:
    """The server really enforces the policy, so the chart test above rendered under it."""
    page, watch = _watched_page(chromium)
    page.goto(f"{server}/csp-probe.html")
    assert page.inner_text("#p") == "static"
    assert any("Content Security Policy" in e for e in watch.errors)
    page.close()


# ------------------------------------------------------------------------------------------ without a browser


def test_vendored_assets_present_with_licences_and_sources() -> None:
    for rel in ("vendor/nhsuk/nhsuk-frontend.min.css", "vendor/nhsuk/nhsuk-frontend.min.js",
                "vendor/nhsuk/LICENSE", "vendor/nhsuk/assets/images/favicon.ico",
                "vendor/vega/vega-bundle.js", "vendor/vega/LICENSE.vega", "vendor/vega/LICENSE.vega-lite",
                "vendor/vega/LICENSE.vega-embed", "vendor/SOURCES.md", "parity.css", "parity.js"):
        assert (STATIC / rel).is_file(), rel
    sources = (STATIC / "vendor/SOURCES.md").read_text(encoding="utf-8")
    assert "nhsuk-frontend" in sources and "vl-convert-python" in sources


def test_vendored_css_and_js_load_nothing_remote() -> None:
    """No url(), @import or import of an absolute http(s) or protocol-relative URL in what the pages load."""
    remote = re.compile(r"""url\(\s*['"]?(?:https?:)?//|@import|\bimport\s*\(?\s*['"](?:https?:)?//""")
    for rel in ("vendor/nhsuk/nhsuk-frontend.min.css", "vendor/nhsuk/nhsuk-frontend.min.js", "parity.css",
                "parity.js"):
        text = (STATIC / rel).read_text(encoding="utf-8")
        assert not remote.search(text), rel
        assert "assets.nhs.uk" not in text, rel


def test_base_layout_markup() -> None:
    html = render_page()
    assert '<html lang="en">' in html
    assert "<title>Test page – Parity</title>" in html
    assert 'href="#maincontent"' in html and 'id="maincontent"' in html
    assert 'class="nhsuk-header__service-name">Parity<' in html
    assert '<form class="nhsuk-header__account-form" action="/logout" method="post"' in html
    assert '<input type="hidden" name="csrf_token" value="tok123">' in html
    assert "alice" in html and "(practice, A81001)" in html
    assert 'href="/practices/A81001/worklist"' in html
    assert 'class="nhsuk-breadcrumb__link" href="/orgs/region/Y63">North East<' in html
    assert "Synthetic data only" in html
    assert 'href="/api/v1/docs"' in html and 'href="/about"' not in html
    # No inline script: every <script> either has a src or is inert JSON.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert not re.search(r"""(?:src|href)=["'](?:https?:)?//""", html), "absolute URL in a src/href"
