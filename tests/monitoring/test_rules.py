"""The recording rules and alerts (deploy/kubernetes/components/monitoring/
rules.yaml): promtool accepts them, and its unit tests (rules.test.yaml
beside this file) pass; every alert is tested firing and not firing, and says
how bad it is and what to do, here and under its own heading in docs/alerts.md.

promtool is Debian's package, in the dev image (deploy/Dockerfile).
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]
RULES = BASE_DIR / "deploy/kubernetes/components/monitoring/rules.yaml"
RULES_TESTS = Path(__file__).with_name("rules.test.yaml")
PROMETHEUS_CONFIG = BASE_DIR / "deploy/prometheus/prometheus.yml"
SEVERITIES = {"critical", "warning"}

GROUPS = yaml.safe_load(RULES.read_text())["spec"]["groups"]
ALERTS = {rule["alert"]: rule for group in GROUPS for rule in group["rules"] if "alert" in rule}
RECORDS = {rule["record"] for group in GROUPS for rule in group["rules"] if "record" in rule}
CASES = yaml.safe_load(RULES_TESTS.read_text())["tests"]
# What each alert means and what to do, a heading per alert.
ALERTS_PAGE = (BASE_DIR / "docs" / "alerts.md").read_text()


def promtool(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is not installed: apt-get install promtool (Debian 13 and later)")
    return subprocess.run([found, *arguments], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def rules_folder(tmp_path) -> Path:
    """The PrometheusRule's spec as a plain rules file, as a Prometheus
    without the operator loads it (deploy/prometheus/prometheus.yml)."""
    spec = yaml.safe_load(RULES.read_text())["spec"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return tmp_path


def test_promtool_accepts_the_rules(rules_folder):
    result = promtool("check", "rules", "rules.yml", cwd=rules_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in GROUPS)
    assert f"SUCCESS: {count} rules found" in result.stdout, result.stdout


def test_the_rules_pass_their_unit_tests(rules_folder):
    shutil.copy(RULES_TESTS, rules_folder)
    result = promtool("test", "rules", RULES_TESTS.name, cwd=rules_folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing():
    fired, silent = set(), set()
    for case in CASES:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    assert fired == silent == set(ALERTS)


def test_every_recording_rule_is_tested_or_read_by_a_tested_alert():
    """Its value in a promql_expr_test, or through an alert's unit tests."""
    read = " ".join(
        [check["expr"] for case in CASES for check in case.get("promql_expr_test", [])]
        + [alert["expr"] for alert in ALERTS.values()]
    )
    assert {record for record in RECORDS if record not in read} == set()


def test_every_alert_says_how_bad_and_what_to_do():
    for name, alert in ALERTS.items():
        assert alert["labels"]["severity"] in SEVERITIES, name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["description"], name
        # And its entry in docs/alerts.md: what it means, what to do.
        assert re.search(rf"^## {re.escape(name)}$", ALERTS_PAGE, re.MULTILINE), name


def test_the_alerts_page_has_an_entry_per_alert_with_its_severity():
    """Each entry opens with its severity (`*critical.*`), as the rule has it,
    and none is left for an alert that was renamed or removed."""
    entries = dict(re.findall(r"^## (\w+)\n\n\*(\w+)\.\*", ALERTS_PAGE, re.MULTILINE))
    assert entries == {name: alert["labels"]["severity"] for name, alert in ALERTS.items()}


def test_the_compose_example_configuration_is_valid(rules_folder):
    """deploy/prometheus/prometheus.yml, with the rules it names beside it."""
    shutil.copy(PROMETHEUS_CONFIG, rules_folder)
    result = promtool("check", "config", PROMETHEUS_CONFIG.name, cwd=rules_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {
        job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    assert jobs == {"web", "asgi", "worker"}
