// The public API at /api/v1, the only server the app talks to.
import * as session from "./session.js";
import * as banners from "./banners.js";

/** An answer other than 2xx, or no answer: status 0 when the network failed. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
}

/**
 * Call the API. Returns {data, degraded}. A `Murmur-Degraded` answer raises the page's
 * degraded banner; the next full answer of the same kind (`area`) takes it down again.
 */
export async function call(method, path, { body, headers = {}, area = "data" } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const accessToken = session.token();
  if (accessToken) sent.Authorization = `Bearer ${accessToken}`;
  let resp;
  try {
    resp = await fetch(`/api/v1${path}`, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, { title: "No answer", detail: "The server could not be reached." }, null);
  }
  const degraded = resp.headers.get("Murmur-Degraded");
  if (resp.ok && area) {
    if (degraded) banners.show(`degraded-${area}`, "degraded", `Served from a fallback: ${degraded}`);
    else banners.clear(`degraded-${area}`);
  }
  let data = null;
  if (resp.status !== 204 && (resp.headers.get("Content-Type") || "").includes("json")) {
    data = await resp.json().catch(() => null);
  }
  if (!resp.ok) {
    const error = new ApiError(resp.status, data, resp.headers.get("Retry-After"));
    if (resp.status === 401 && accessToken) {
      // The session expired or its key was retired: start again from the sign-in page.
      session.signOut();
      location.hash = "#/signin";
    }
    throw error;
  }
  return { data, degraded };
}

/** One sentence for a failed call: the problem's detail, and when to retry. */
export function describe(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err && err.message}`;
  const p = err.problem;
  if (err.status === 0) return p.detail;
  if (err.status === 429 || err.status === 503) {
    const what = err.status === 429 ? "Too many requests" : "Service unavailable";
    const wait = err.retryAfter ? `try again in ${err.retryAfter} s` : "try again later";
    return `${what} (${err.status}): ${wait}.${p.detail ? ` ${p.detail}` : ""}`;
  }
  const fields = Array.isArray(p.errors)
    ? p.errors.map((e) => ` ${e.field}: ${e.message}.`).join("")
    : "";
  return `${p.detail || p.title || `HTTP ${err.status}`}${fields}`;
}

/** Path segment for a username (already restricted to [a-z0-9_], encoded all the same). */
export function seg(value) {
  return encodeURIComponent(value);
}
