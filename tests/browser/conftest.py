"""Browser fixtures: the web front end in headless Chromium, against the test profile.

The pages are opened at nginx's root (http://127.0.0.1:8090/ by default, the origin of
MURMUR_E2E_URL), exactly as a person opens them; the data a story needs beforehand is made
through the public API with the end-to-end layer's client. Chromium is Debian's
(`chromium` on PATH), driven by Playwright; a missing browser or stack fails the session,
it is never a skip.
"""

from __future__ import annotations

import json
import shutil
from typing import Iterator

import pytest

from e2e.conftest import API, Client, Member, api, stack_ready  # noqa: F401 - fixtures reused

BASE = API.rsplit("/api/v1", 1)[0]
# Playwright's auto-waiting assertions use this unless a step says otherwise (ms).
EXPECT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator["object"]:
    """One headless Chromium for the session."""
    from playwright.sync_api import expect, sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)", pytrace=False)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        yield chromium
        chromium.close()


class Tab:
    """A page of the front end in its own browser context, and what went wrong in it."""

    def __init__(self, context: "object") -> None:
        self.context = context
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"script error: {exc}"))
        # A Content-Security-Policy violation is only reported on the console.
        self.page.on("console", lambda msg: self.errors.append(f"console: {msg.text}")
                     if "Content Security Policy" in msg.text else None)

    def open(self, route: str = "") -> "object":
        """Navigate to a route of the app (e.g. '#/home') and return the page."""
        self.page.goto(f"{BASE}/{route}")
        return self.page


@pytest.fixture()
def tab(browser) -> Iterator[Tab]:
    """A fresh, signed-out tab (its own sessionStorage); fails on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = Tab(context)
    yield opened
    context.close()
    assert not opened.errors, opened.errors


@pytest.fixture()
def open_tab(browser):
    """Open further tabs, each its own browser context; signed in as `member` if given."""
    contexts: list[Tab] = []

    def opener(member: Member | None = None) -> Tab:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        if member is not None:
            # The app keeps its session in sessionStorage; this is what signing in stores.
            context.add_init_script(
                f"sessionStorage.setItem('murmur.token', {json.dumps(member.token)});"
                f"sessionStorage.setItem('murmur.username', {json.dumps(member.username)});")
        opened = Tab(context)
        contexts.append(opened)
        return opened

    yield opener
    for opened in contexts:
        opened.context.close()
    assert not [e for t in contexts for e in t.errors], [e for t in contexts for e in t.errors]
