"""Open a report in headless Chromium (Playwright) and collect what went wrong.

Uses a system Chromium (``/usr/bin/chromium`` on Debian, or the path in ``ALIGNLAB_CHROMIUM``)
rather than Playwright's downloaded browsers, so it works where ``playwright install`` cannot.
Install: ``pip install playwright`` and ``apt-get update && apt-get install -y chromium``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.errors import AlignlabError

CHROMIUM_ENV = "ALIGNLAB_CHROMIUM"
"""Environment variable naming the Chromium executable to use."""

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
"""Flags for a quiet, offline, container-friendly headless Chromium."""

INSTALL_HINT = ("install it with: pip install playwright && apt-get update && "
                "apt-get install -y chromium (or set ALIGNLAB_CHROMIUM to a Chromium executable; "
                "do not run `playwright install`)")


class BrowserUnavailable(AlignlabError, RuntimeError):
    """Playwright or a Chromium executable is missing."""


def find_chromium() -> str:
    """Path of the Chromium executable to launch.

    Looks at ``ALIGNLAB_CHROMIUM`` first, then ``/usr/bin/chromium``, then ``chromium``,
    ``chromium-browser`` and ``google-chrome`` on the PATH.

    Returns:
        The executable's path.

    Raises:
        BrowserUnavailable: none was found (or ``ALIGNLAB_CHROMIUM`` names a missing file).
    """
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        if Path(env).is_file():
            return env
        raise BrowserUnavailable(f"{CHROMIUM_ENV}={env!r} is not a file; {INSTALL_HINT}")
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable(f"no Chromium executable found; {INSTALL_HINT}")


@dataclass
class PageLog:
    """What a page reported while it was open."""

    console_errors: list[str] = field(default_factory=list)
    """Text of console messages of type ``error``."""
    page_errors: list[str] = field(default_factory=list)
    """Uncaught exceptions thrown by page scripts."""
    failed_requests: list[str] = field(default_factory=list)
    """``URL: reason`` of requests that failed or answered with status >= 400."""
    requests: list[str] = field(default_factory=list)
    """URL of every request the page made (the document itself included)."""


@contextmanager
def open_page(path: str | Path, width: int = 1280, height: int = 900) -> Iterator[tuple[Any, PageLog]]:
    """Open a local HTML file in headless Chromium; yield the Playwright page and its log.

    The log collects console errors, page errors and failed requests from before the page loads
    until the context exits, so callers can interact with the page (``page.select_option``...)
    and then check the log.

    Args:
        path: the HTML file.
        width: viewport width in CSS pixels.
        height: viewport height in CSS pixels.

    Yields:
        ``(page, log)``: a ``playwright.sync_api.Page`` after the ``load`` event, and a PageLog.

    Raises:
        BrowserUnavailable: Playwright or Chromium is missing.
        FileNotFoundError: ``path`` does not exist.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"no such report file: {file}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise BrowserUnavailable(f"the python package playwright is missing; {INSTALL_HINT}") from e
    executable = find_chromium()
    log = PageLog()
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                         headless=True)
        except Exception as e:  # playwright raises its own Error type
            raise BrowserUnavailable(f"could not launch Chromium at {executable}: {e}; "
                                     f"{INSTALL_HINT}") from e
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: log.console_errors.append(m.text)
                    if m.type == "error" else None)
            page.on("pageerror", lambda err: log.page_errors.append(str(err)))
            page.on("request", lambda req: log.requests.append(req.url))
            page.on("requestfailed",
                    lambda req: log.failed_requests.append(f"{req.url}: {req.failure}"))
            page.on("response", lambda resp: log.failed_requests.append(
                f"{resp.url}: HTTP {resp.status}") if resp.status >= 400 else None)
            page.goto(file.as_uri(), wait_until="load")
            yield page, log
        finally:
            browser.close()


def check_html_in_browser(path: str | Path, screenshot: str | Path | None = None) -> dict[str, Any]:
    """Open an HTML file in headless Chromium and report errors, title and visible text.

    Args:
        path: the HTML file.
        screenshot: optional PNG path for a full-page screenshot.

    Returns:
        ``{"console_errors", "page_errors", "failed_requests", "requests", "title", "text"}``:
        lists of strings for the first four, the document title, and the body's inner text.

    Raises:
        BrowserUnavailable: Playwright or Chromium is missing.
        FileNotFoundError: ``path`` does not exist.
    """
    with open_page(path) as (page, log):
        title = page.title()
        text = page.inner_text("body")
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    return {"console_errors": list(log.console_errors), "page_errors": list(log.page_errors),
            "failed_requests": list(log.failed_requests), "requests": list(log.requests),
            "title": title, "text": text}
