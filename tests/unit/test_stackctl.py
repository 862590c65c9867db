"""The platform tool without a platform: each profile's own Toxiproxy proxies, the fault
commands and the chaos actions acting on one profile only, the Toxiproxy client against a
stand-in server, and the process table matching the code it runs."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import stackctl
from common import config
from stackctl import components, faults, proxy_table, rolling
from stackctl.toxiproxy import Toxiproxy, ToxiproxyError

REPO = Path(__file__).resolve().parents[2]


class FakeToxiproxy(BaseHTTPRequestHandler):
    """Just enough of Toxiproxy's API: proxies with an enabled flag and named toxics."""

    state: dict[str, dict] = {}
    calls: list[tuple[str, str]] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self, code: int, body: object = None) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _route(self, method: str) -> None:
        self.calls.append((method, self.path))
        parts = [p for p in self.path.split("/") if p]
        body = self._body() if method == "POST" else None
        if parts == ["version"]:
            return self._answer(200, "2.12.0")
        if parts == ["proxies"] and method == "GET":
            return self._answer(200, self.state)
        if parts == ["populate"]:
            for d in body:
                self.state.setdefault(d["name"], {**d, "toxics": []})
            return self._answer(201, {"proxies": list(self.state.values())})
        if not parts[1:] or parts[1] not in self.state:
            return self._answer(404, {"error": "proxy not found"})
        proxy = self.state[parts[1]]
        if len(parts) == 2:
            proxy["enabled"] = body["enabled"]
            return self._answer(200, proxy)
        toxics = proxy["toxics"]
        if len(parts) == 3:
            if method == "GET":
                return self._answer(200, toxics)
            if any(t["name"] == body["name"] for t in toxics):
                return self._answer(409, {"error": "toxic already exists"})
            toxics.append(body)
            return self._answer(200, body)
        found = [t for t in toxics if t["name"] == parts[3]]
        if not found:
            return self._answer(404, {"error": "toxic not found"})
        if method == "DELETE":
            toxics.remove(found[0])
            return self._answer(204)
        found[0]["attributes"].update(body["attributes"])
        return self._answer(200, found[0])

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")


@pytest.fixture()
def toxiproxy(monkeypatch, tmp_path):
    """A stand-in Toxiproxy holding every profile's proxies; the platform's client finds it
    on MURMUR_TOXIPROXY_PORT. MURMUR_HOME points at an empty folder."""
    monkeypatch.setenv("MURMUR_HOME", str(tmp_path))
    FakeToxiproxy.state = {d["name"]: {**d, "toxics": []} for d in proxy_table.proxy_definitions()}
    FakeToxiproxy.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeToxiproxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MURMUR_TOXIPROXY_PORT", str(server.server_address[1]))
    yield FakeToxiproxy
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------- per-profile proxies


def test_each_profile_has_its_own_proxies_named_and_offset_like_its_processes():
    dev = {p.store: p for p in stackctl.proxies("dev")}
    test = {p.store: p for p in stackctl.proxies("test")}
    assert set(dev) == set(test) == {"postgres", "redis", "cassandra", "kafka", "redis-fanout"}
    offset = config.PROFILES["test"].port_offset
    for store, proxy in test.items():
        assert (dev[store].name, proxy.name) == (store, f"test-{store}")
        assert proxy.listen == dev[store].listen + offset
        assert proxy.env == dev[store].env and proxy.direct == dev[store].direct
    # The stores behind are shared, except Kafka's listener: one per profile, so a client
    # bootstrapped through a profile's proxy is told that proxy's address.
    assert test["redis"].upstream == dev["redis"].upstream
    assert test["kafka"].upstream == dev["kafka"].upstream + offset


def test_no_two_proxies_and_no_proxy_and_platform_port_share_a_port():
    listens = [p.listen for p in proxy_table.all_proxies()]
    assert len(listens) == len(set(listens)) == 10
    p = stackctl.ports()
    platform = {p.postgres, p.redis, p.kafka, p.kafka_controller, p.cassandra,
                p.cassandra_storage, p.cassandra_jmx, p.toxiproxy, p.nginx_status,
                p.nginx_status + 10,
                *(proxy_table.kafka_listener(prof)[1] for prof in config.PROFILES)}
    services = {port + prof.port_offset for port in config.SERVICE_PORTS.values()
                for prof in config.PROFILES.values()}
    assert not set(listens) & (platform | services)


def test_a_profiles_processes_connect_through_that_profiles_proxies(monkeypatch, tmp_path):
    monkeypatch.setenv("MURMUR_HOME", str(tmp_path))
    for profile in config.PROFILES:
        chosen = {p.env: p.name for p in proxy_table.proxies_of(profile, "fanout")}
        prefix = stackctl.prefix(profile)
        assert chosen["MURMUR_REDIS_PORT"] == f"{prefix}redis-fanout"
        assert chosen["MURMUR_PG_PORT"] == f"{prefix}postgres"
        assert {p.env: p.name for p in proxy_table.proxies_of(profile, "timeline")}[
            "MURMUR_REDIS_PORT"] == f"{prefix}redis"


def test_the_kafka_config_has_a_proxied_listener_per_profile_advertising_its_proxy():
    rendered = components.kafka_listeners()
    for profile in config.PROFILES:
        name, port = proxy_table.kafka_listener(profile)
        proxy = stackctl.proxy(profile, "kafka")
        assert f"{name}://127.0.0.1:{port}" in rendered["PROXIED_LISTENERS"].split(",")
        assert f"{name}://127.0.0.1:{proxy.listen}" in rendered["PROXIED_ADVERTISED"].split(",")
        assert f"{name}:PLAINTEXT" in rendered["PROXIED_PROTOCOLS"].split(",")
        assert proxy.upstream == port


def test_the_rendered_toxiproxy_config_holds_every_profiles_proxies(monkeypatch, tmp_path):
    monkeypatch.setenv("MURMUR_HOME", str(tmp_path))
    changed = components.render_configs()
    assert tmp_path / "etc/toxiproxy.json" in changed
    names = {d["name"] for d in json.loads((tmp_path / "etc/toxiproxy.json").read_text())}
    assert names == {p.name for p in proxy_table.all_proxies()}
    assert components.render_configs() == set(), "a second render changes nothing"


# ------------------------------------------------------------------ faults on one profile


def test_heal_for_the_test_profile_leaves_the_dev_proxies_as_they_are(toxiproxy):
    client = Toxiproxy()
    client.set_toxic("redis", "demo_latency", "latency", {"latency": 100})
    client.set_enabled("kafka", False)
    client.set_toxic("test-redis", "t_latency", "latency", {"latency": 100})
    client.set_enabled("test-kafka", False)
    toxiproxy.calls.clear()
    faults.toxic_heal("test", None)
    state = toxiproxy.state
    assert state["test-redis"]["toxics"] == [] and state["test-kafka"]["enabled"] is True
    assert [t["name"] for t in state["redis"]["toxics"]] == ["demo_latency"]
    assert state["kafka"]["enabled"] is False
    touched = {path.split("/")[2] for _, path in toxiproxy.calls}
    assert touched == {p.name for p in stackctl.proxies("test")}, touched


def test_cut_and_toxic_name_the_profiles_proxy_and_say_so(toxiproxy, capsys):
    faults.toxic_cut("test", "redis")
    faults.toxic_add("test", "cassandra", "latency", "250")
    faults.toxic_add("test", "cassandra", "latency", "500")  # the same kind again: changed
    out = capsys.readouterr().out
    assert "test-redis: cut" in out and "make heal DEP=redis" in out
    assert toxiproxy.state["test-redis"]["enabled"] is False
    assert toxiproxy.state["redis"]["enabled"] is True
    [toxic] = toxiproxy.state["test-cassandra"]["toxics"]
    assert (toxic["name"], toxic["attributes"]) == ("test-cassandra_latency", {"latency": 500})
    assert toxiproxy.state["cassandra"]["toxics"] == []


def test_the_list_shows_the_profiles_proxies_only(toxiproxy, capsys):
    faults.toxic_list("test")
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [p.name for p in stackctl.proxies("test")]


def test_a_wrong_dependency_names_the_accepted_ones(toxiproxy):
    with pytest.raises(SystemExit, match="unknown dependency 'nosuch': DEP=one of postgres, "
                                         "redis, cassandra, kafka, redis-fanout"):
        faults.toxic_cut("test", "nosuch")


def test_the_chaos_actions_put_and_take_toxics_on_the_runs_profile_only(toxiproxy, tmp_path):
    sys.path.insert(0, str(REPO / "chaos"))
    from murmur_chaos import platform as chaos_platform

    configuration = {"murmur_profile": "test", "murmur_run_dir": str(tmp_path / "run")}
    added = chaos_platform.add_toxic("kafka", "chaos_hang", "timeout", {"timeout": 0},
                                     configuration=configuration)
    assert added["proxy"] == "test-kafka"
    assert [t["name"] for t in toxiproxy.state["test-kafka"]["toxics"]] == ["chaos_hang"]
    assert toxiproxy.state["kafka"]["toxics"] == []
    assert chaos_platform.remove_toxic("kafka", "chaos_hang",
                                       configuration=configuration)["removed"] is True
    # A rollback after the method's own removal finds nothing to do.
    assert chaos_platform.remove_toxic("kafka", "chaos_hang",
                                       configuration=configuration)["removed"] is False
    assert toxiproxy.state["test-kafka"]["toxics"] == []


# ----------------------------------------------------------------------- the client itself


def test_the_client_reports_a_refusal_with_toxiproxys_own_words(toxiproxy):
    with pytest.raises(ToxiproxyError, match="refused POST /proxies/nosuch: 404 proxy not found"):
        Toxiproxy().set_enabled("nosuch", True)


def test_the_client_says_how_to_start_a_toxiproxy_that_does_not_answer():
    port = free_port()
    with pytest.raises(ToxiproxyError, match=f"not answering on 127.0.0.1:{port}.*"
                                             "make start SERVICE=toxiproxy"):
        Toxiproxy(port=port, timeout=1).proxies()


# ------------------------------------------------------------ the processes and their code


def _module_file(command: str) -> str:
    app = re.search(r"'([\w.]+):create_app\(\)'", command)
    module = app.group(1) if app else command.split("python -m ", 1)[1].split()[0]
    return module.replace(".", "/") + ".py"


@pytest.mark.parametrize("svc", components.SERVICES, ids=lambda s: s.name)
def test_each_service_process_waits_for_the_module_its_command_runs(svc):
    assert svc.module_file == _module_file(svc.command)


def test_the_rolling_restart_covers_every_service_process_once():
    assert sorted(name for name, _ in rolling.ROLLING_ORDER) == sorted(
        svc.name for svc in components.SERVICES)
    reloaded = {name for name, how in rolling.ROLLING_ORDER if how == "reload"}
    assert reloaded <= {svc.name for svc in components.SERVICES if svc.gunicorn}


def test_the_test_profiles_services_get_its_proxies_ports(monkeypatch, tmp_path):
    monkeypatch.setenv("MURMUR_HOME", str(tmp_path))
    monkeypatch.setattr(components, "REPO", tmp_path)  # every module file "exists"
    for svc in components.SERVICES:
        path = tmp_path / "services" / svc.module_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    comps = {c.name: c for c in components.service_components("test")}
    assert "test-timeline-authors" in comps
    env = comps["test-timeline-authors"].environment
    assert env["MURMUR_KAFKA_PORT"] == str(stackctl.proxy("test", "kafka").listen)
    assert env["MURMUR_CASSANDRA_PORT"] == str(stackctl.proxy("test", "cassandra").listen)
    assert env["MURMUR_PROFILE"] == "test" and env["MURMUR_PROCESS"] == "test-timeline-authors"


# ------------------------------------------------------------------------ the command line


def test_the_command_line_runs_from_anywhere_and_a_fault_command_names_toxiproxy(tmp_path):
    port = free_port()
    done = subprocess.run([sys.executable, str(REPO / "local/stackctl"), "--profile", "test",
                           "toxic", "list"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin",
                                           "MURMUR_HOME": str(tmp_path),
                                           "MURMUR_TOXIPROXY_PORT": str(port)})
    assert done.returncode == 1
    assert f"error: Toxiproxy is not answering on 127.0.0.1:{port}" in done.stderr
    usage = subprocess.run([sys.executable, str(REPO / "local/stackctl"), "toxic", "nosuch"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "MURMUR_HOME": str(tmp_path)})
    assert usage.returncode == 1 and "usage: stackctl toxic add DEP" in usage.stderr


def test_importing_the_tool_builds_no_table_and_writes_nothing(tmp_path):
    """The port and path tables are read when asked: a caller that moves MURMUR_HOME or a
    port after the import gets what it set, and the import itself writes nothing."""
    probe = ("import os, stackctl\n"
             "os.environ['MURMUR_HOME'] = os.environ['LATER_HOME']\n"
             "os.environ['MURMUR_TOXIPROXY_PORT'] = '28474'\n"
             "print(stackctl.paths().etc, stackctl.ports().toxiproxy, stackctl.Toxiproxy().port)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "local"),
                               "MURMUR_HOME": str(tmp_path / "home"),
                               "LATER_HOME": str(tmp_path / "later")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "later/etc"), "28474", "28474"]
    assert not (tmp_path / "home").exists() and not (tmp_path / "later").exists()


def test_kafka_storage_is_formatted_with_a_cluster_id_that_starts_with_a_dash(
        tmp_path, monkeypatch):
    """One id in 64 starts with "-"; passed as its own argument, Kafka's parser took it for
    an option and the first start failed."""
    from stackctl import preparation

    monkeypatch.setenv("MURMUR_HOME", str(tmp_path))
    monkeypatch.setattr(preparation, "kafka_cluster_id", lambda: "-LtElFcQRlCbBBIEmX7BaA")
    ran = []
    monkeypatch.setattr(preparation.subprocess, "run", lambda args, **kw: ran.append(args))
    preparation.prepare_kafka()
    [args] = ran
    assert "--cluster-id=-LtElFcQRlCbBBIEmX7BaA" in args
    assert "-LtElFcQRlCbBBIEmX7BaA" not in args
