"""The observability servers of the local platform: `make urls` prints addresses that all
answer, VictoriaMetrics scrapes every service process of both profiles with the shared
labels, vmalert evaluates the rules file, and a running Locust UI joins the list.
"""

from __future__ import annotations

import socket
import subprocess
import textwrap
from pathlib import Path

import requests

import stackctl
from common import config
from conftest import REPO, make, stackctl as run_stackctl, wait_until

NAMES = ["api", "web", "traces", "metrics", "dashboards", "alerts"]
KINDS = {"gateway-1": "gateway", "gateway-2": "gateway"}  # else the process name is its kind
LOCUST = REPO / ".venv-load" / "bin" / "locust"


def printed_urls(output: str) -> dict[str, str]:
    """`name url` lines parsed into {name: url}."""
    rows = [line.split() for line in output.splitlines() if line.strip()]
    assert all(len(row) == 2 for row in rows), output
    return dict(rows)


def answers_200(url: str) -> bool:
    return requests.get(url.replace("localhost", "127.0.0.1"), timeout=5).status_code == 200


def query(expr: str) -> list[dict]:
    """An instant query against the local VictoriaMetrics (its Prometheus API)."""
    resp = requests.get(f"{stackctl.observability.victoriametrics_url()}/api/v1/query",
                        params={"query": expr}, timeout=10)
    resp.raise_for_status()
    return resp.json()["data"]["result"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_urls_prints_one_name_and_url_a_line_and_every_one_answers_200():
    result = make("urls")
    assert result.returncode == 0, result.stderr
    urls = printed_urls(result.stdout)
    assert list(urls)[:len(NAMES)] == NAMES
    assert urls["api"] == (f"http://localhost:{config.PROFILES['test'].http_port}"
                           "/api/v1/openapi.json")
    assert urls["web"] == f"http://localhost:{config.PROFILES['test'].http_port}/"
    for name, url in urls.items():
        wait_until(lambda: answers_200(url), timeout=20, message=f"{name} {url} answering 200")


def test_up_ends_by_printing_the_same_addresses_as_make_urls():
    up = run_stackctl("up", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    tail = up.stdout.split("Murmur is up in", 1)[1].splitlines()[1:]
    listed = [line for line in tail if not line.strip().startswith("status:")]
    assert printed_urls("\n".join(listed)) == printed_urls(make("urls").stdout)
    assert "make logs" in tail[-1]


def test_victoriametrics_scrapes_every_service_process_of_both_profiles_with_the_shared_labels():
    expected = {(KINDS.get(c.name.removeprefix(stackctl.prefix(p)),
                           c.name.removeprefix(stackctl.prefix(p))), c.name, p)
                for p in config.PROFILES for c in stackctl.components.service_components(p)}
    assert len(expected) >= 16

    def scraped() -> set[tuple[str, str, str]]:
        return {(r["metric"]["job"], r["metric"]["instance"], r["metric"]["profile"])
                for r in query('up{profile!=""}')}

    found = wait_until(lambda: scraped() >= expected and scraped(), timeout=30,
                       message="a sample of `up` for every service process")
    assert found == expected
    # The test profile runs: every one of its processes answers its scrape.
    test_up = {r["metric"]["instance"]: r["value"][1] for r in query('up{profile="test"}')}
    assert set(test_up.values()) == {"1"}, test_up
    servers = {r["metric"]["job"]: r["value"][1]
               for r in query('up{job=~"zipkin|victoriametrics|vmalert"}')}
    assert servers == {"zipkin": "1", "victoriametrics": "1", "vmalert": "1"}
    # A real service metric, by the labels the dashboards aggregate by.
    wait_until(lambda: query('sum by (job) (murmur_http_requests_total{job="gateway",'
                             'profile="test"})'),
               timeout=30, message="the gateways' request counter")


def test_vmalert_evaluates_the_rules_file_and_writes_recorded_series_to_victoriametrics():
    base = stackctl.observability.vmalert_url()
    rules_file = str(stackctl.observability.RULES)
    assert f'-rule="{rules_file}"' in requests.get(f"{base}/flags", timeout=10).text

    def groups() -> list[dict]:
        answer = requests.get(f"{base}/api/v1/rules", timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "success"
        return answer.json()["data"]["groups"]

    assert all(group["file"] == rules_file for group in groups())
    recording = [r["name"] for g in groups() for r in g["rules"] if r["type"] == "recording"]
    assert recording, f"{rules_file} records nothing"
    # Some recorded series reaches VictoriaMetrics: evaluated there, written back there.
    selector = "{__name__=~\"" + "|".join(recording) + "\"}"
    wait_until(lambda: query(f"count({selector})"), timeout=45,
               message="a recorded series in VictoriaMetrics")


def test_a_running_locust_ui_is_listed_and_answers(tmp_path: Path):
    assert LOCUST.exists(), "Locust is installed by `make load-install`"
    port = free_port()
    env = {"MURMUR_LOAD_UI_PORT": str(port)}
    before = printed_urls(run_stackctl("urls", env=env).stdout)
    assert "locust" not in before
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(textwrap.dedent("""
        from locust import HttpUser, task

        class Reader(HttpUser):
            @task
            def openapi(self):
                self.client.get("/api/v1/openapi.json")
    """))
    ui = subprocess.Popen([str(LOCUST), "-f", str(locustfile), "--web-host", "127.0.0.1",
                           "--web-port", str(port), "--host", "http://127.0.0.1:8090"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        listed = wait_until(
            lambda: printed_urls(run_stackctl("urls", env=env).stdout).get("locust"),
            timeout=30, message="the Locust UI listed")
        assert listed == f"http://localhost:{port}/"
        assert answers_200(listed)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
