"""Browser fixtures: pytest-playwright's ``page``, on Debian's chromium, one per module.

Playwright's own browser download is not used: ``make browser`` installs the Debian
package and the tests launch ``/usr/bin/chromium`` (``CLARION_CHROMIUM`` points
elsewhere), headless, with the flags a root container needs.

pytest-playwright keeps one Playwright for the whole session. Its sync API leaves its
own event loop marked as running on the main thread between calls, so every async test
(pytest-asyncio) and every ``asyncio.run`` after the first browser test would fail with
"Cannot run the event loop while another loop is running". Here Playwright and the
browser live for one test module instead: its teardown clears that mark before the next
module runs. Within a browser module, tests and the fixtures they request are sync
(``stack`` is); a session fixture a browser test needs is set up before the module's
browser, as pytest sets up wider scopes first.

``screenshot(page, name)`` writes ``docs/screenshots/<name>.png``: the README shows
those files, so a run of the browser tests refreshes them and committing them keeps
the README true.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, sync_playwright

from clarion_devtools.infra import repo_root

CHROMIUM = os.environ.get("CLARION_CHROMIUM", "/usr/bin/chromium")
# As root in a container chromium's sandbox cannot start, and /dev/shm is often 64 MB.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

Screenshot = Callable[[Page, str], Path]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test here is marked e2e and browser (``-m browser`` picks it), and is sync."""
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        if not (item.get_closest_marker("e2e") and item.get_closest_marker("browser")):
            raise pytest.UsageError(f"{item.nodeid}: mark browser tests e2e and browser")
        if item.get_closest_marker("asyncio") is not None:
            raise pytest.UsageError(f"{item.nodeid}: browser tests are sync (see conftest)")


@pytest.fixture(scope="session")
def browser_type_launch_args(pytestconfig: pytest.Config) -> dict[str, Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no browser at {CHROMIUM}: `make browser` installs Debian's chromium")
    return {
        "executable_path": CHROMIUM,
        "headless": not pytestconfig.getoption("--headed"),
        "args": CHROMIUM_ARGS,
        "slow_mo": pytestconfig.getoption("--slowmo"),
    }


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright) -> BrowserType:
    return playwright.chromium


@pytest.fixture(scope="module")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="module")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    launched = launch_browser()
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def browser_context_args(
    pytestconfig: pytest.Config, _pw_artifacts_folder: tempfile.TemporaryDirectory[str]
) -> dict[str, Any]:
    """A fixed desktop viewport in the light theme: screenshots differ only when pages do."""
    args: dict[str, Any] = {
        "viewport": VIEWPORT,
        "color_scheme": "light",
        "locale": "en-GB",
        "timezone_id": "UTC",
    }
    if pytestconfig.getoption("--video") in ("on", "retain-on-failure"):
        args["record_video_dir"] = _pw_artifacts_folder.name
    return args


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    return repo_root() / "docs" / "screenshots"


@pytest.fixture
def screenshot(screenshots_dir: Path) -> Screenshot:
    """``screenshot(page, "users")`` writes the whole page to ``<screenshots_dir>/users.png``."""

    def take(page: Page, name: str) -> Path:
        if not SCREENSHOT_NAME.match(name):
            raise ValueError(f"screenshot names are lower-case words and dashes: {name!r}")
        path = screenshots_dir / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
        return path

    return take
