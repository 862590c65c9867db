// #/signin: sign in, or create an account and sign in with it.
import { h } from "./dom.js";
import { call, describe } from "./api.js";
import * as session from "./session.js";

function field(id, label, attrs, hint) {
  const input = h("input", { id, name: id.split("-").pop(), ...attrs,
    "aria-describedby": hint ? `${id}-hint` : undefined });
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("small", { id: `${id}-hint` }, hint) : null);
}

async function openSession(username, password) {
  const { data } = await call("POST", "/sessions", { body: { username, password }, area: null });
  session.signIn(data.access_token, username);
  location.hash = "#/home";
}

/** Render the sign-in and sign-up forms into `main`. */
export function signinView(main) {
  const inStatus = h("p", { class: "form-status", role: "alert" });
  const signIn = h("form", { class: "card", "aria-labelledby": "signin-heading" },
    h("h2", { id: "signin-heading" }, "Sign in"),
    field("signin-username", "Username", { autocomplete: "username", required: true, autocapitalize: "none" }),
    field("signin-password", "Password", { type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit", class: "primary" }, "Sign in"), inStatus);

  const upStatus = h("p", { class: "form-status", role: "alert" });
  const signUp = h("form", { class: "card", "aria-labelledby": "signup-heading" },
    h("h2", { id: "signup-heading" }, "Create an account"),
    field("signup-username", "Username", { autocomplete: "username", required: true,
      pattern: "[a-z0-9_]{3,30}", autocapitalize: "none" }, "3–30 characters: a–z, 0–9 and _"),
    field("signup-display", "Display name (optional)", { maxlength: 50 }),
    field("signup-password", "Password", { type: "password", autocomplete: "new-password",
      required: true, minlength: 8, maxlength: 128 }, "8 to 128 characters"),
    h("button", { type: "submit", class: "primary" }, "Create account"), upStatus);

  async function submitting(form, status, work) {
    const button = form.querySelector("button[type=submit]");
    if (button.disabled) return;
    button.disabled = true;
    status.textContent = "";
    try {
      await work();
    } catch (err) {
      status.textContent = describe(err);
    } finally {
      button.disabled = false;
    }
  }

  signIn.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(signIn);
    submitting(signIn, inStatus, () => openSession(data.get("username"), data.get("password")));
  });

  // One key per account being made: a retry after a lost answer gets the same account.
  let pending = null;
  signUp.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(signUp);
    const body = { username: data.get("username"), password: data.get("password") };
    if (data.get("display")) body.display_name = data.get("display");
    if (!pending || pending.username !== body.username) {
      pending = { username: body.username, key: crypto.randomUUID() };
    }
    submitting(signUp, upStatus, async () => {
      await call("POST", "/users", { body, headers: { "Idempotency-Key": pending.key }, area: null });
      pending = null;
      await openSession(body.username, body.password);
    });
  });

  main.append(h("h1", {}, "Welcome to Murmur"), h("div", { class: "cards" }, signIn, signUp));
  return () => {};
}
