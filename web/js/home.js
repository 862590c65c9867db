// #/home: compose, the home timeline with "Older" paging, and polling for new tweets that
// are announced ("3 new tweets") and revealed on request, so the list never jumps.
import { h } from "./dom.js";
import { call, describe } from "./api.js";
import * as banners from "./banners.js";
import { composeForm } from "./compose.js";
import { newer, tweetList } from "./tweets.js";

const POLL_MS = 4000;

/** Render the home page into `main`; returns a function that stops its polling. */
export function homeView(main) {
  const list = tweetList({
    label: "Home timeline",
    empty: "Your timeline is empty: follow someone, or post.",
    load: (cursor) => call("GET", `/timeline?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      { area: "timeline" }).then((r) => r),
  });
  let waiting = [];
  const notice = h("div", { class: "new-tweets", "aria-live": "polite" });
  const reveal = h("button", { type: "button", class: "reveal", hidden: true });
  notice.append(reveal);
  reveal.addEventListener("click", () => {
    list.prepend(waiting);
    waiting = [];
    reveal.hidden = true;
    const first = list.el.querySelector("li.tweet a");
    if (first) first.focus();
  });

  const compose = composeForm((tweet) => {
    waiting = waiting.filter((t) => t.id !== tweet.id);
    list.prepend([tweet]);
  });
  main.append(h("h1", {}, "Home"), compose, notice, list.el);
  list.reload();

  async function poll() {
    if (document.hidden) return;
    try {
      const { data } = await call("GET", "/timeline?limit=20", { area: "timeline" });
      banners.clear("poll");
      const top = list.topId();
      const fresh = data.items.filter((t) => !list.has(t.id) && (!top || newer(t.id, top)));
      const known = new Set(waiting.map((t) => t.id));
      waiting = [...fresh.filter((t) => !known.has(t.id)), ...waiting]
        .sort((a, b) => (newer(a.id, b.id) ? -1 : 1));
      if (waiting.length) {
        reveal.textContent = waiting.length === 1 ? "1 new tweet" : `${waiting.length} new tweets`;
        reveal.hidden = false;
      }
    } catch (err) {
      banners.show("poll", "error", `Checking for new tweets failed. ${describe(err)}`);
    }
  }
  const timer = setInterval(poll, POLL_MS);
  return () => {
    clearInterval(timer);
    banners.clear("poll");
  };
}
