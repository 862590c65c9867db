"""The front end is usable with the keyboard alone: every step is a Tab to a real control,
typing, and Enter, and the focused control is visibly marked."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from e2e.conftest import PASSWORD

FOCUS_STEPS = 30


def tab_to(page, selector: str) -> None:
    """Press Tab until the element matching `selector` has the focus (a bounded number of times)."""
    for _ in range(FOCUS_STEPS):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab within {FOCUS_STEPS} presses")


def focus_is_visible(page) -> bool:
    """Whether the focused element draws an outline."""
    return page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
    }""")


def test_a_member_signs_in_and_posts_using_only_the_keyboard(tab, api) -> None:
    ada = api.sign_up("web")
    page = tab.open("#/signin")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    tab_to(page, "#signin-username")
    assert focus_is_visible(page)
    page.keyboard.type(ada.username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/home$"))

    text = f"typed, not clicked {uuid.uuid4().hex[:8]}"
    tab_to(page, "#compose-text")
    page.keyboard.type(text)
    tab_to(page, "form.compose button[type=submit]")
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("li.tweet").first).to_contain_text(text)
    tweets = api.get(f"/users/{ada.username}/tweets").json()["items"]
    assert [t["text"] for t in tweets] == [text]


def test_the_skip_link_moves_the_focus_to_the_page_content_without_leaving_the_page(
        tab, api) -> None:
    page = tab.open("#/system")
    expect(page.get_by_role("heading", name="System")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#/system$"))
