// The signed-in session lives in sessionStorage: it ends with the tab, and nothing else
// on this origin can read it out of a cookie sent with every request.

const TOKEN = "murmur.token";
const USERNAME = "murmur.username";

/** The access token, or null when signed out. */
export function token() {
  return sessionStorage.getItem(TOKEN);
}

/** The signed-in username, or null. */
export function username() {
  return sessionStorage.getItem(USERNAME);
}

/** Remember a new session. */
export function signIn(accessToken, name) {
  sessionStorage.setItem(TOKEN, accessToken);
  sessionStorage.setItem(USERNAME, name);
  document.dispatchEvent(new CustomEvent("murmur:session"));
}

/** Forget the session. */
export function signOut() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(USERNAME);
  document.dispatchEvent(new CustomEvent("murmur:session"));
}
