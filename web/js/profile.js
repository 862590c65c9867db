// #/u/<name>: a profile with its counts, follow/unfollow, and the user's tweets.
import { h, replace, timeEl } from "./dom.js";
import { call, describe, seg } from "./api.js";
import * as session from "./session.js";
import { tweetList } from "./tweets.js";

/** Whether the signed-in user follows `name`: their following list, a few pages at most. */
async function follows(me, name) {
  let cursor = null;
  for (let pages = 0; pages < 10; pages++) {
    const q = `/users/${seg(me)}/following?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const { data } = await call("GET", q, { area: null });
    if (data.items.some((u) => u.username === name)) return true;
    cursor = data.next_cursor;
    if (!cursor) return false;
  }
  return false;
}

/** Render the profile of `name` into `main`. */
export function profileView(main, name) {
  const heading = h("h1", {}, `@${name}`);
  const card = h("section", { class: "profile", "aria-labelledby": "profile-heading" });
  heading.id = "profile-heading";
  const status = h("p", { class: "form-status", role: "status" });
  const list = tweetList({
    label: `Tweets by @${name}`,
    empty: "No tweets yet.",
    load: (cursor) => call("GET",
      `/users/${seg(name)}/tweets?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      { area: "profile" }),
  });
  // Outside the card, which is redrawn after each follow: the button keeps the focus.
  const followButton = h("button", { type: "button", class: "primary follow", hidden: true });
  main.append(heading, card, followButton, status, h("h2", {}, "Tweets"), list.el);

  let following = null;

  function renderCard(user) {
    const counts = h("dl", { class: "counts" },
      h("div", {}, h("dt", {}, "Followers"), h("dd", { "data-count": "followers" }, String(user.followers_count))),
      h("div", {}, h("dt", {}, "Following"), h("dd", { "data-count": "following" }, String(user.following_count))));
    replace(heading, user.display_name || user.username, " ",
      h("span", { class: "username" }, `@${user.username}`));
    replace(card,
      user.bio ? h("p", { class: "bio" }, user.bio) : null,
      counts,
      h("p", { class: "joined" }, "Joined ", timeEl(user.created_at)));
  }

  function renderFollow() {
    followButton.hidden = following === null;
    followButton.textContent = following ? "Unfollow" : "Follow";
    followButton.setAttribute("aria-pressed", following ? "true" : "false");
  }

  async function loadProfile() {
    try {
      const { data } = await call("GET", `/users/${seg(name)}`, { area: "profile" });
      renderCard(data);
      return data;
    } catch (err) {
      status.textContent = err.status === 404 ? `There is no user @${name}.` : describe(err);
      return null;
    }
  }

  followButton.addEventListener("click", async () => {
    followButton.disabled = true;
    const method = following ? "DELETE" : "PUT";
    try {
      await call(method, `/users/me/following/${seg(name)}`, { area: null });
      following = !following;
      status.textContent = following ? `You follow @${name}.` : `You no longer follow @${name}.`;
      renderFollow();
      await loadProfile();
    } catch (err) {
      status.textContent = describe(err);
    } finally {
      followButton.disabled = false;
    }
  });

  (async () => {
    const user = await loadProfile();
    if (!user) return;
    list.reload();
    const me = session.username();
    if (me && me !== name) {
      try {
        following = await follows(me, name);
      } catch (err) {
        status.textContent = describe(err);
      }
      renderFollow();
    }
  })();
  return () => {};
}
