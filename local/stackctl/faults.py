"""`toxic`: faults on one profile's proxies (latency, hangs, resets, a cut), and healing."""

from __future__ import annotations

import json
import sys

from .proxy_table import Proxy, proxies
from .toxiproxy import Toxiproxy, ToxiproxyError

# How each `make toxic TOXIC=x` maps onto a Toxiproxy toxic: (type, attribute holding MS).
TOXICS = {"latency": ("latency", "latency"), "timeout": ("timeout", "timeout"),
          "reset": ("reset_peer", "timeout")}
USAGE = "usage: stackctl toxic add DEP latency|timeout|reset [MS] | cut DEP | heal [DEP] | list"


def chosen_proxy(profile: str, dep: str | None) -> Proxy:
    """`profile`'s proxy in front of the store `DEP=` names; exits with the accepted names."""
    known = proxies(profile)
    names = ", ".join(p.store for p in known)
    if not dep:
        sys.exit(f"which dependency? DEP=one of {names}")
    for proxy in known:
        if proxy.store == dep:
            return proxy
    sys.exit(f"unknown dependency {dep!r}: DEP=one of {names}")


def describe_toxic(kind: str, ms: int) -> str:
    if kind == "latency":
        return f"every response delayed by {ms} ms"
    if kind == "timeout":
        return ("data stops; connections hang until healed" if ms == 0
                else f"data stops; connections close after {ms} ms")
    return "connections reset (TCP RST)" + (f" after {ms} ms" if ms else "")


def toxic_add(profile: str, dep: str | None, kind: str | None, ms_text: str | None) -> None:
    """Add (or change) one toxic on a store's proxy."""
    proxy = chosen_proxy(profile, dep)
    if kind not in TOXICS:
        sys.exit(f"unknown toxic {kind or ''!r}: TOXIC=one of {', '.join(TOXICS)}")
    if kind == "latency" and not ms_text:
        sys.exit("latency needs a delay: MS=<milliseconds>, e.g. MS=2000")
    try:
        ms = int(ms_text or 0)
        if ms < 0:
            raise ValueError
    except ValueError:
        sys.exit(f"MS must be a whole number of milliseconds, not {ms_text!r}")
    toxic_type, attribute = TOXICS[kind]
    # One toxic per kind and proxy: adding it again changes it.
    Toxiproxy().set_toxic(proxy.name, f"{proxy.name}_{kind}", toxic_type, {attribute: ms})
    print(f"{proxy.name}: {describe_toxic(kind, ms)} (make heal DEP={proxy.store} removes it)")


def toxic_cut(profile: str, dep: str | None) -> None:
    """Disable a store's proxy: its open connections close and new ones are refused."""
    proxy = chosen_proxy(profile, dep)
    Toxiproxy().set_enabled(proxy.name, False)
    print(f"{proxy.name}: cut, connections refused (make heal DEP={proxy.store} restores it)")


def toxic_heal(profile: str, dep: str | None) -> None:
    """Remove every toxic from one of the profile's proxies (or from all of them) and
    enable it again; the other profile's proxies are left as they are."""
    chosen = [chosen_proxy(profile, dep)] if dep else proxies(profile)
    client = Toxiproxy()
    for proxy in chosen:
        client.heal(proxy.name)
        print(f"{proxy.name}: healed")


def toxic_list(profile: str) -> None:
    """One line per proxy of the profile: addresses, enabled or cut, and its toxics."""
    found = Toxiproxy().proxies()
    print(f"{'proxy':<19}{'listen':<18}{'upstream':<18}{'state':<9}toxics")
    for proxy in proxies(profile):
        p = found.get(proxy.name)
        if p is None:
            print(f"{proxy.name:<19}{'-':<18}{'-':<18}{'missing':<9}-")
            continue
        toxics = ", ".join(
            f"{t['type']} {json.dumps(t['attributes'], separators=(',', ':'))}"
            for t in p.get("toxics") or []) or "-"
        state = "enabled" if p["enabled"] else "cut"
        print(f"{proxy.name:<19}{p['listen']:<18}{p['upstream']:<18}{state:<9}{toxics}")


def cmd_toxic(profile: str, args: list[str]) -> None:
    action, rest = (args[0], args[1:]) if args else ("", [])
    rest += [None] * 3  # type: ignore[list-item] - absent arguments read as None
    try:
        if action == "add":
            toxic_add(profile, rest[0], rest[1], rest[2])
        elif action == "cut":
            toxic_cut(profile, rest[0])
        elif action == "heal":
            toxic_heal(profile, rest[0])
        elif action == "list":
            toxic_list(profile)
        else:
            sys.exit(USAGE)
    except ToxiproxyError as exc:
        sys.exit(f"error: {exc}")
