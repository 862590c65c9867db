// Murmur's front end: a hash router over four pages, using only the public API.
import * as session from "./session.js";
import { h } from "./dom.js";
import { signinView } from "./signin.js";
import { homeView } from "./home.js";
import { profileView } from "./profile.js";
import { systemView } from "./system.js";

let stop = () => {};

function route() {
  const hash = location.hash || "";
  const signedIn = Boolean(session.token());
  const profile = hash.match(/^#\/u\/([a-z0-9_]{1,30})$/);
  if (profile) return { name: "profile", arg: profile[1] };
  if (hash === "#/system") return { name: "system" };
  if (hash === "#/signin") return signedIn ? { redirect: "#/home" } : { name: "signin" };
  if (hash === "#/home" && signedIn) return { name: "home" };
  if (hash === "#/home" || hash === "" || hash === "#/") {
    return { redirect: signedIn ? "#/home" : "#/signin" };
  }
  return { name: "missing" };
}

function render() {
  const r = route();
  if (r.redirect) {
    location.replace(r.redirect);
    return;
  }
  stop();
  const main = document.getElementById("main");
  main.replaceChildren();
  const views = {
    signin: () => signinView(main),
    home: () => homeView(main),
    profile: () => profileView(main, r.arg),
    system: () => systemView(main),
    missing: () => {
      main.append(h("h1", {}, "Not found"), h("p", {}, "This page does not exist. ",
        h("a", { href: "#/home" }, "Go home"), "."));
      return () => {};
    },
  };
  stop = views[r.name]();
  const titles = { signin: "Sign in", home: "Home", profile: `@${r.arg}`, system: "System", missing: "Not found" };
  document.title = `${titles[r.name]} · Murmur`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === r.name || (link.dataset.nav === "me" && r.name === "profile" && r.arg === session.username());
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // A new page is announced by moving the focus to its main region (not on first load).
  if (rendered++) main.focus();
}
let rendered = 0;

function sessionChanged() {
  const signedIn = Boolean(session.token());
  document.body.classList.toggle("signed-in", signedIn);
  document.getElementById("nav-me").setAttribute("href", `#/u/${session.username() || ""}`);
}

window.addEventListener("hashchange", (event) => {
  // The skip link's "#main" is a jump within the page, not a route.
  if (location.hash === "#main") {
    history.replaceState(null, "", new URL(event.oldURL).hash || "#/home");
    document.getElementById("main").focus();
    return;
  }
  render();
});
document.addEventListener("murmur:session", sessionChanged);
document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  location.hash = "#/signin";
});
sessionChanged();
render();
