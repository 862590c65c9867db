// The compose form. Each composed tweet gets one Idempotency-Key, kept across retries of
// that same text, so a double click, a retry after a lost answer or nginx resending the
// request to the other gateway all make one tweet.
import { h } from "./dom.js";
import { call, describe } from "./api.js";

const MAX = 280;

/** A compose form; `onPosted(tweet)` runs after each accepted tweet. */
export function composeForm(onPosted) {
  const text = h("textarea", { id: "compose-text", name: "text", rows: 3, maxlength: MAX,
    required: true, "aria-describedby": "compose-count" });
  const count = h("span", { id: "compose-count", class: "count" }, `${MAX} characters left`);
  const button = h("button", { type: "submit", class: "primary" }, "Post");
  const status = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
  const form = h("form", { class: "compose", "aria-label": "Compose a tweet" },
    h("label", { for: "compose-text" }, "What's happening?"), text,
    h("div", { class: "compose-foot" }, count, button), status);

  let pending = null; // {text, key} of the tweet being posted until it is accepted
  let sending = false;

  text.addEventListener("input", () => {
    count.textContent = `${MAX - [...text.value].length} characters left`;
  });
  // Ctrl+Enter (or Cmd+Enter) posts from the text area.
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (sending) return;
    const value = text.value;
    if (!value.trim()) {
      status.textContent = "Write something first.";
      return;
    }
    if (!pending || pending.text !== value) pending = { text: value, key: crypto.randomUUID() };
    sending = true;
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    status.textContent = "Posting…";
    try {
      const { data } = await call("POST", "/tweets", {
        body: { text: value }, headers: { "Idempotency-Key": pending.key }, area: null });
      pending = null;
      text.value = "";
      count.textContent = `${MAX} characters left`;
      status.textContent = "Posted.";
      onPosted(data);
    } catch (err) {
      // The key stays with this text: posting it again cannot make a second tweet.
      status.textContent = describe(err);
    } finally {
      sending = false;
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
  return form;
}
