"""How nginx serves the front end: the app's files with their types, revalidation, gzip and
a strict security policy, while every path outside the app and /api/v1 stays a 404
problem."""

from __future__ import annotations

import re

import pytest
import requests

from browser.conftest import BASE

FILES = {
    "/": "text/html",
    "/index.html": "text/html",
    "/js/app.js": "text/javascript",
    "/css/app.css": "text/css",
    "/favicon.svg": "image/svg+xml",
}


@pytest.mark.parametrize("path, content_type", FILES.items())
def test_each_file_of_the_app_is_served_with_its_type_and_security_headers(path, content_type):
    resp = requests.get(BASE + path, timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].split(";")[0] == content_type
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Request-ID"]


def test_an_unchanged_module_is_revalidated_with_its_etag():
    first = requests.get(BASE + "/js/app.js", timeout=5)
    etag = first.headers["ETag"]
    again = requests.get(BASE + "/js/app.js", headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304
    assert again.content == b""


def test_text_is_sent_compressed_to_a_client_that_accepts_gzip():
    resp = requests.get(BASE + "/js/system.js", headers={"Accept-Encoding": "gzip"}, timeout=5,
                        stream=True)
    assert resp.headers["Content-Encoding"] == "gzip"
    raw = resp.raw.read(decode_content=False)
    assert len(raw) < len(requests.get(BASE + "/js/system.js",
                                       headers={"Accept-Encoding": "identity"},
                                       timeout=5).content)


@pytest.mark.parametrize("path", ["/no/such/page", "/js/missing.js", "/.git/config",
                                  "/../local/conf/nginx.conf.tmpl"])
def test_a_path_that_is_not_a_file_of_the_app_is_a_404_problem(path):
    resp = requests.get(BASE + path, timeout=5)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json()["status"] == 404


def test_the_api_keeps_answering_json_and_problems_as_before():
    doc = requests.get(BASE + "/api/v1/openapi.json", timeout=5)
    assert doc.status_code == 200 and doc.headers["Content-Type"].startswith("application/json")
    assert "Content-Security-Policy" not in doc.headers
    missing = requests.get(BASE + "/api/v1/users/" + "x" * 3 + "_nobody_here", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")


def test_the_page_references_only_files_of_its_own_origin():
    html = requests.get(BASE + "/", timeout=5).text
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(r.startswith(("/", "#")) and not r.startswith("//") for r in refs), refs
    assert "<script>" not in html and "style=" not in html
