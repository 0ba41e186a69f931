"""The dashboard's footing, proven before the dashboard uses it: Debian's chromium, driven
by Playwright, runs the vendored htmx (and its SSE extension) and Alpine.js's CSP build on
a page whose Content-Security-Policy allows scripts from the page's own origin only.

A tiny HTTP server on 127.0.0.1 serves the page, the vendored files and the fragments;
an inline script on the page proves the policy is enforced (it must not run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from clarion_devtools.vendor import vendor_dir

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

Screenshot = Callable[[Page, str], Path]  # the conftest's screenshot fixture

CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Clarion browser smoke</title>
  <meta name="htmx-config" content='{"includeIndicatorStyles": false}'>
  <script src="/static/app.js"></script>
  <script src="/static/vendor/htmx.min.js"></script>
  <script src="/static/vendor/htmx-ext-sse.min.js"></script>
  <script defer src="/static/vendor/alpinejs-csp.min.js"></script>
</head>
<body>
  <main>
    <h1>Smoke</h1>
    <button hx-get="/fragments/greeting" hx-target="#greeting">Load greeting</button>
    <p id="greeting">Not loaded</p>
    <div x-data="toggle">
      <button @click="flip">Toggle</button>
      <p x-text="label" id="toggled"></p>
    </div>
    <div hx-ext="sse" sse-connect="/events" sse-swap="progress" id="progress">Waiting</div>
  </main>
  <script>document.body.dataset.inline = "ran";</script>
</body>
</html>
"""

# Registered on alpine:init, before Alpine walks the page: the CSP build evaluates no
# expression strings, so a component's state and methods come from Alpine.data.
APP_JS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective);
});
document.addEventListener("alpine:init", () => {
  Alpine.data("toggle", () => ({
    on: false,
    flip() { this.on = !this.on; },
    get label() { return this.on ? "Switched on" : "Switched off"; },
  }));
});
"""

SSE_EVENT = "event: progress\ndata: <strong>3 of 3 delivered</strong>\n\n"
# A stream the server ended would make the extension log an error and reconnect: it
# stays open until the server stops.
STREAM_OPEN_S = 30.0
_stopping = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        vendored = {f"/static/vendor/{p.name}": p for p in vendor_dir().glob("*.min.js")}
        if self.path == "/":
            self._send(PAGE.encode(), "text/html; charset=utf-8")
        elif self.path == "/static/app.js":
            self._send(APP_JS.encode(), "text/javascript")
        elif self.path in vendored:
            self._send(vendored[self.path].read_bytes(), "text/javascript")
        elif self.path == "/fragments/greeting" and self.headers.get("HX-Request") == "true":
            self._send(b"<em>Hello from the server</em>", "text/html; charset=utf-8")
        elif self.path == "/events":
            self._stream(SSE_EVENT.encode())
        elif self.path == "/favicon.ico":
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, event: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(event)
        self.wfile.flush()
        _stopping.wait(STREAM_OPEN_S)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's assertions say what went wrong, not an access log


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    _stopping.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _stopping.set()
    server.shutdown()
    server.server_close()


def test_htmx_and_alpine_work_under_a_script_src_self_policy(page: Page, site: str) -> None:
    console_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", on_console)
    page.goto(site)

    page.get_by_role("button", name="Load greeting").click()
    expect(page.locator("#greeting")).to_have_text("Hello from the server")

    toggled = page.locator("#toggled")
    expect(toggled).to_have_text("Switched off")
    page.get_by_role("button", name="Toggle").click()
    expect(toggled).to_have_text("Switched on")
    page.get_by_role("button", name="Toggle").click()
    expect(toggled).to_have_text("Switched off")

    expect(page.locator("#progress")).to_have_text("3 of 3 delivered")

    # The policy is in force: the page's own inline script was refused, and it is the
    # only thing that was.
    assert page.evaluate("document.body.dataset.inline") is None
    assert page.evaluate("window.cspViolations") == ["script-src-elem"]
    assert len(console_errors) == 1
    assert "inline script" in console_errors[0]


def test_screenshot_writes_the_whole_page_at_the_fixed_width(
    page: Page, site: str, screenshot: Screenshot, screenshots_dir: Path
) -> None:
    page.goto(site)
    expect(page.locator("#toggled")).to_have_text("Switched off")
    path = screenshot(page, "browser-smoke")
    assert path == screenshots_dir / "browser-smoke.png"
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(header[16:20], "big") == 1280  # the IHDR width
    with pytest.raises(ValueError, match="lower-case"):
        screenshot(page, "../README")


@pytest.fixture(scope="module")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This page is no dashboard page: its picture stays out of docs/screenshots."""
    return tmp_path_factory.mktemp("screenshots")
