"""The alerting and recording rules (observability/rules.yml) against the unit tests of
observability/tests/, run by VictoriaMetrics's own rule test tool, vmalert-tool: every
alert is shown firing when what it guards breaks and silent when it does not, and the
recording rules compute the expected values from given series."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.common import config

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "observability/rules.yml"
TESTS_DIR = REPO / "observability/tests"
TEST_FILES = sorted(TESTS_DIR.glob("*.yml"))
RULES = [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
         for rule in group["rules"]]
ALERTS = sorted(rule["alert"] for rule in RULES if "alert" in rule)
RECORDS = sorted(rule["record"] for rule in RULES if "record" in rule)
# The tool starts an in-process VictoriaMetrics per test group; a file takes about a second.
TIMEOUT_S = 180


def vmalert_tool() -> Path:
    """The vmalert-tool binary local/install.sh builds, where local/stackctl finds vmalert."""
    tool = Path(config.env("MURMUR_CACHE", str(REPO / ".cache"))) / "bin/vmalert-tool"
    # A missing tool is a broken install, never a reason to pass without checking the rules.
    assert tool.is_file(), f"{tool} is missing: run `make install`"
    return tool


def run_unittest(files: list[Path]) -> subprocess.CompletedProcess[str]:
    """Run `vmalert-tool unittest` on the given test files; the output joins both streams."""
    args = [str(vmalert_tool()), "unittest"]
    for path in files:
        args += ["--files", str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S,
                          cwd=files[0].parent)


def rule_test_groups() -> list[dict]:
    """Every test group of every rule test file."""
    return [case for path in TEST_FILES for case in yaml.safe_load(path.read_text())["tests"]]


def alert_expectations() -> list[tuple[str, bool]]:
    """(alert name, expected to fire) of every alert_rule_test."""
    return [(check["alertname"], bool(check.get("exp_alerts")))
            for case in rule_test_groups() for check in case.get("alert_rule_test", [])]


def test_the_rules_pass_their_unit_tests() -> None:
    assert TEST_FILES, f"no rule test files in {TESTS_DIR.relative_to(REPO)}"
    result = run_unittest(TEST_FILES)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # One SUCCESS per file: a file the tool skipped would not print one.
    assert output.count("SUCCESS") == len(TEST_FILES), output


def test_every_test_file_reads_the_rules_file() -> None:
    for path in TEST_FILES:
        rule_files = yaml.safe_load(path.read_text())["rule_files"]
        assert [(path.parent / name).resolve() for name in rule_files] == [RULES_FILE], path


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_has_a_test_that_shows_it_firing(alert: str) -> None:
    assert (alert, True) in alert_expectations(), (
        f"{alert}: no alert_rule_test in observability/tests/ expects it to fire")


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_has_a_test_that_shows_it_silent(alert: str) -> None:
    assert (alert, False) in alert_expectations(), (
        f"{alert}: no alert_rule_test in observability/tests/ expects it not to fire "
        "(healthy, or before its `for` has elapsed)")


@pytest.mark.parametrize("record", RECORDS)
def test_every_recording_rule_has_an_expression_test(record: str) -> None:
    checked = [check for case in rule_test_groups() for check in case.get("metricsql_expr_test", [])
               if record in check["expr"] and check.get("exp_samples")]
    assert checked, f"{record}: no metricsql_expr_test in observability/tests/ checks its value"


def test_the_tool_reports_an_alert_whose_threshold_changed(tmp_path: Path) -> None:
    # The same tests against a copy of the rules whose outbox threshold moved from 1000 to
    # 2000 rows: the 1500-row backlog no longer alerts, and the tool must say so.
    rules = RULES_FILE.read_text()
    broken = rules.replace("outbox:murmur_outbox_backlog:max > 1000",
                           "outbox:murmur_outbox_backlog:max > 2000")
    assert broken != rules, "the threshold this test moves is no longer in rules.yml"
    (tmp_path / "rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    copies = [Path(shutil.copy(path, tmp_path / "tests" / path.name)) for path in TEST_FILES]
    result = run_unittest(copies)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "alertname: MurmurOutboxBacklogHigh" in output, output
    assert "FAILED" in output, output


def test_the_tool_checks_that_a_recording_rule_computes_the_expected_value(
        tmp_path: Path) -> None:
    # Summing the replicas' reports instead of taking the max doubles the backlog: 14, not 7.
    rules = RULES_FILE.read_text()
    broken = rules.replace("max by (outbox, profile) (murmur_outbox_backlog)",
                           "sum by (outbox, profile) (murmur_outbox_backlog)")
    assert broken != rules, "the expression this test changes is no longer in rules.yml"
    (tmp_path / "rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    pipeline = Path(shutil.copy(TESTS_DIR / "pipeline.yml", tmp_path / "tests/pipeline.yml"))
    result = run_unittest([pipeline])
    assert result.returncode != 0, result.stdout + result.stderr
    assert 'expr: "outbox:murmur_outbox_backlog:max"' in result.stdout, result.stdout
