"""The front end's main stories in a real browser against the real stack: signing up,
following, posting, a followed author's tweet arriving through the fan-out, and a tweet
posted once however often its button is pressed or its request retried."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from e2e.conftest import PASSWORD, unique_name

# The fan-out is asynchronous and the page polls every few seconds.
DELIVERY_MS = 30_000


def sign_up_through_the_page(page, username: str) -> None:
    """Fill in and send the sign-up form."""
    form = page.locator("form", has=page.get_by_role("heading", name="Create an account"))
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()


def test_a_visitor_signs_up_and_lands_signed_in_on_their_home_timeline(tab, api) -> None:
    page = tab.open()
    expect(page).to_have_url(re.compile(r"#/signin$"))
    username = unique_name("web")
    sign_up_through_the_page(page, username)
    expect(page).to_have_url(re.compile(r"#/home$"))
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    expect(page.get_by_text("Your timeline is empty")).to_be_visible()
    expect(page.get_by_role("link", name="My profile")).to_have_attribute("href", f"#/u/{username}")
    assert page.evaluate("sessionStorage.getItem('murmur.username')") == username
    assert api.user(username)["username"] == username


def test_a_taken_username_shows_the_problems_detail(tab, api) -> None:
    taken = api.sign_up("web")
    page = tab.open("#/signin")
    sign_up_through_the_page(page, taken.username)
    expect(page.get_by_role("alert").filter(has_text=re.compile(r"\S"))).to_contain_text(
        re.compile("taken|exists", re.I))
    expect(page).to_have_url(re.compile(r"#/signin$"))


def test_a_follower_sees_a_followed_authors_new_tweet_arrive_in_their_home_timeline(
        open_tab, api) -> None:
    author, follower = api.sign_up("web"), api.sign_up("web")
    # The follower follows the author from the author's profile page.
    reader = open_tab(follower).open(f"#/u/{author.username}")
    follow = reader.get_by_role("button", name="Follow", exact=True)
    follow.click()
    expect(reader.get_by_role("button", name="Unfollow")).to_be_visible()
    expect(reader.locator("[data-count=followers]")).to_have_text("1")
    assert api.user(follower.username)["following_count"] == 1

    reader.goto(reader.url.split("#")[0] + "#/home")
    expect(reader.get_by_role("heading", name="Home")).to_be_visible()

    # The author posts from their own page.
    writer = open_tab(author).open("#/home")
    text = f"through the fan-out {uuid.uuid4().hex[:8]}"
    writer.get_by_label("What's happening?").fill(text)
    writer.get_by_role("button", name="Post").click()
    expect(writer.locator("li.tweet").first).to_contain_text(text)

    # The follower's page finds it by polling, announces it, and shows it on request.
    notice = reader.get_by_role("button", name=re.compile(r"^\d+ new tweets?$"))
    expect(notice).to_be_visible(timeout=DELIVERY_MS)
    expect(reader.get_by_text(text)).to_have_count(0)
    notice.click()
    expect(reader.locator("li.tweet").first).to_contain_text(text)
    expect(reader.locator("li.tweet").first.get_by_role("link")).to_contain_text(author.username)


def test_a_tweet_is_shown_as_text_never_as_markup(open_tab, api) -> None:
    ada = api.sign_up("web")
    text = '<img src=x onerror="window.__pwned=1"><b>bold?</b>'
    api.tweet(ada, text)
    page = open_tab(ada).open(f"#/u/{ada.username}")
    expect(page.locator("li.tweet .tweet-text").first).to_have_text(text)
    assert page.locator("li.tweet img, li.tweet b").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_a_double_click_on_post_makes_one_tweet(open_tab, api) -> None:
    ada = api.sign_up("web")
    page = open_tab(ada).open("#/home")
    keys: list[str | None] = []
    page.on("request", lambda r: keys.append(r.headers.get("idempotency-key"))
            if r.method == "POST" and r.url.endswith("/api/v1/tweets") else None)
    page.get_by_label("What's happening?").fill("pressed twice")
    page.get_by_role("button", name="Post").dblclick()
    expect(page.get_by_role("status").filter(has_text="Posted.")).to_be_visible()
    expect(page.locator("li.tweet")).to_have_count(1)
    tweets = api.get(f"/users/{ada.username}/tweets").json()["items"]
    assert [t["text"] for t in tweets] == ["pressed twice"]
    assert keys and all(keys) and len(set(keys)) == 1, keys


def test_a_post_whose_answer_was_lost_is_retried_with_the_same_key_and_makes_one_tweet(
        open_tab, api) -> None:
    ada = api.sign_up("web")
    page = open_tab(ada).open("#/home")
    keys: list[str] = []

    def lose_the_first_answer(route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            # The server takes the post; its answer never reaches the page.
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/tweets", lose_the_first_answer)
    page.get_by_label("What's happening?").fill("answer lost once")
    post = page.get_by_role("button", name="Post")
    post.click()
    expect(page.get_by_role("status").filter(has_text="could not be reached")).to_be_visible()
    expect(post).to_be_enabled()
    post.click()
    expect(page.get_by_role("status").filter(has_text="Posted.")).to_be_visible()
    assert len(keys) == 2 and keys[0] == keys[1], keys
    tweets = api.get(f"/users/{ada.username}/tweets").json()["items"]
    assert [t["text"] for t in tweets] == ["answer lost once"]


def test_an_author_deletes_their_own_tweet_and_cannot_delete_anothers(open_tab, api) -> None:
    ada, bob = api.sign_up("web"), api.sign_up("web")
    mine = api.tweet(ada, "to be deleted")
    api.tweet(bob, "not yours")
    page = open_tab(ada).open(f"#/u/{ada.username}")
    item = page.locator(f"li.tweet[data-id='{mine['id']}']")
    item.get_by_role("button", name=re.compile("^Delete")).click()
    expect(item).to_have_count(0)
    expect(page.get_by_text("Tweet deleted.")).to_be_visible()
    assert api.get(f"/tweets/{mine['id']}").status_code == 404
    page.goto(page.url.split("#")[0] + f"#/u/{bob.username}")
    expect(page.get_by_text("not yours")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)


def test_older_tweets_are_paged_in_with_the_cursor(open_tab, api) -> None:
    ada = api.sign_up("web")
    for n in range(23):
        api.tweet(ada, f"tweet number {n}")
    page = open_tab(ada).open(f"#/u/{ada.username}")
    expect(page.locator("li.tweet")).to_have_count(20)
    page.get_by_role("button", name="Older").click()
    expect(page.locator("li.tweet")).to_have_count(23)
    expect(page.locator("li.tweet").last).to_contain_text("tweet number 0")
    expect(page.get_by_role("button", name="Older")).to_be_hidden()
