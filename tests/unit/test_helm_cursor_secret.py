"""The chart's page cursor key: made once by the secrets hook, and given to every users
and timeline pod from the one Secret (replicas must share it to open each other's
cursors). No helm here: the hook is run as a script, the templates are read as text."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import yaml

from common.cursors import Cursors

CHART = Path(__file__).resolve().parents[2] / "helm/murmur"


def hook():
    spec = importlib.util.spec_from_file_location("generate_secrets",
                                                  CHART / "files/generate-secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hook_makes_a_random_key_the_services_accept():
    made = [hook().generate("key", ["cursor-key"]) for _ in range(2)]
    assert [list(m) for m in made] == [["cursor-key"], ["cursor-key"]]
    first, second = (m["cursor-key"].decode() for m in made)
    assert first != second and len(first) >= 43
    codec = Cursors(first)
    assert codec.decode("home", 1, codec.encode("home", 1, 5), 1) == (5,)


def test_the_hook_looks_after_the_cursor_secret_unless_one_is_supplied():
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    spec = re.search(r'- name: \{\{ include "murmur.cursorSecretName" \. \}\}\n'
                     r'  generate: \{\{ ternary "" "key" \(not \(empty '
                     r'\.Values\.secrets\.cursor\.existingSecret\)\) \| quote \}\}\n'
                     r'  keys: \[cursor-key\]\n', helpers)
    assert spec, "murmur.secretSpecs does not list the cursor Secret"


def test_users_and_timeline_pods_read_the_key_from_the_one_secret():
    expected = ('(dict "name" "MURMUR_CURSOR_KEY" "secret" (include "murmur.cursorSecretName" .)'
                ' "key" "cursor-key")')
    for component in ("users", "timeline"):
        template = (CHART / f"templates/{component}/deployment.yaml").read_text()
        assert expected in template and '"secretEnv" $secretEnv' in template, component


def test_a_supplied_secret_is_a_documented_value():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["secrets"]["cursor"] == {"existingSecret": ""}
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert "cursor" in schema["properties"]["secrets"]["properties"]
    assert "`secrets.cursor.existingSecret`" in (CHART / "README.md").read_text()
