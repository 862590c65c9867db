// A list of tweets (home timeline or one user's), newest first, with "Older" paging.
import { h, replace, timeEl } from "./dom.js";
import { call, describe, seg } from "./api.js";
import * as session from "./session.js";

/** Compare two ids (64-bit, time-sortable, sent as strings): BigInt keeps every digit. */
export function newer(a, b) {
  return BigInt(a) > BigInt(b);
}

/**
 * A tweet list bound to a page source: `load(cursor)` resolves to {items, next_cursor}.
 * Returns {el, reload, prepend, topId}.
 */
export function tweetList({ label, load, empty }) {
  const list = h("ol", { class: "tweets", "aria-label": label });
  const status = h("p", { class: "list-status", role: "status" });
  const older = h("button", { type: "button", class: "older", hidden: true }, "Older");
  const el = h("section", { class: "tweet-list", "aria-label": label }, list, status, older);
  const ids = new Set();
  let cursor = null;
  let busy = false;

  function item(tweet) {
    const me = session.username();
    const author = tweet.author || {};
    const name = author.display_name || author.username || "(unknown)";
    const children = [
      h("header", { class: "tweet-head" },
        h("a", { href: `#/u/${author.username}`, class: "author" },
          h("span", { class: "display-name" }, name), " ",
          h("span", { class: "username" }, `@${author.username}`)),
        " · ", timeEl(tweet.created_at)),
      h("p", { class: "tweet-text" }, tweet.text),
    ];
    const li = h("li", { class: "tweet", "data-id": tweet.id }, h("article", {}, children));
    if (me && author.username === me) {
      const del = h("button", { type: "button", class: "delete" }, "Delete");
      del.setAttribute("aria-label", `Delete your tweet: ${tweet.text.slice(0, 40)}`);
      del.addEventListener("click", async () => {
        del.disabled = true;
        try {
          await call("DELETE", `/tweets/${seg(tweet.id)}`, { area: null });
          li.remove();
          ids.delete(tweet.id);
          status.textContent = "Tweet deleted.";
        } catch (err) {
          del.disabled = false;
          status.textContent = describe(err);
        }
      });
      li.querySelector("article").append(del);
    }
    return li;
  }

  async function page(more) {
    if (busy) return;
    busy = true;
    older.disabled = true;
    status.textContent = more ? "Loading older tweets…" : "Loading…";
    try {
      const { data } = await load(more ? cursor : null);
      if (!more) {
        replace(list);
        ids.clear();
      }
      for (const tweet of data.items) {
        if (ids.has(tweet.id)) continue;
        ids.add(tweet.id);
        list.append(item(tweet));
      }
      cursor = data.next_cursor;
      older.hidden = !cursor;
      status.textContent = ids.size === 0 ? empty : "";
    } catch (err) {
      status.textContent = describe(err);
    } finally {
      busy = false;
      older.disabled = false;
    }
  }
  older.addEventListener("click", () => page(true));

  return {
    el,
    reload: () => page(false),
    /** Put tweets (newest first) at the top, skipping any already shown. */
    prepend(tweets) {
      const fresh = tweets.filter((t) => !ids.has(t.id));
      for (const tweet of [...fresh].reverse()) {
        ids.add(tweet.id);
        list.prepend(item(tweet));
      }
      if (ids.size) status.textContent = "";
      return fresh.length;
    },
    has: (id) => ids.has(id),
    topId() {
      const first = list.querySelector("li.tweet");
      return first ? first.dataset.id : null;
    },
  };
}
