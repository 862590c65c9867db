// Page-wide banners in one aria-live region: a fallback answer (Murmur-Degraded) and
// errors that belong to no form (a refused poll, an outage).
import { h } from "./dom.js";

const shown = new Map();

function region() {
  return document.getElementById("banners");
}

/** Show (or update) the banner `key` with `text`; kind is "degraded" | "error" | "info". */
export function show(key, kind, text) {
  const current = shown.get(key);
  if (current && current.dataset.kind === kind && current.textContent === text) return;
  const el = h("p", { class: `banner banner-${kind}`, "data-banner": key, "data-kind": kind }, text);
  if (current) current.replaceWith(el);
  else region().append(el);
  shown.set(key, el);
}

/** Remove the banner `key` if it is shown. */
export function clear(key) {
  const current = shown.get(key);
  if (current) current.remove();
  shown.delete(key);
}
