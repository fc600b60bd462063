"""`workshop sandbox check`: the probe, the judge that is no rubber stamp, and the command's exit status."""

from __future__ import annotations

import dataclasses

import pytest

from grader.sandbox.check import format_table, judge, probe_sandbox, run_sandbox_check

pytestmark = [pytest.mark.sandbox]


@pytest.mark.slow  # over 5 s
def test_self_check_passes_on_this_host():
    rows = run_sandbox_check("bwrap", uid=61051)
    assert all(row.ok for row in rows), format_table(rows)
    assert len(rows) >= 10


def test_self_check_fails_when_a_fact_is_wrong():
    """The judge is not a rubber stamp: a leak in any one fact fails the table."""
    outcome = probe_sandbox("bwrap", uid=61051)
    assert all(row.ok for row in judge(outcome))
    facts = outcome.facts
    doctored = [
        {"network": {**facts["network"], "interfaces": ["eth0", "lo"]}},
        {"seccomp_mode": "0"},
        {"caps": {**facts["caps"], "CapEff": "00000000a80425fb"}},
        {"labels_found": ["/data/test_labels.csv"]},
        {"env": [*facts["env"], "WORKSHOP_SECRET_KEY"]},
        {"base_prefix": "/usr"},
        {"memory": "allocated twice the limit"},
        {"writes": {**facts["writes"], "/usr/x": "allowed"}},
    ]
    for change in doctored:
        assert not all(row.ok for row in judge(dataclasses.replace(outcome, facts={**facts, **change}))), change
    assert not all(row.ok for row in judge(dataclasses.replace(outcome, heard=["tcp4"])))
    assert not all(row.ok for row in judge(dataclasses.replace(outcome, leftovers=[4242])))


def test_self_check_refuses_the_none_backend():
    rows = run_sandbox_check("none")
    assert [row.ok for row in rows] == [False] and "without any isolation" in rows[0].detail


def test_cli_sandbox_check_prints_the_table(runner):
    result = runner.invoke(args=["sandbox", "check"])
    assert result.exit_code == 0, result.output
    assert "seccomp filter active" in result.output and "FAIL" not in result.output


def test_cli_sandbox_check_exits_1_when_isolation_is_missing(app, runner):
    app.config["SANDBOX"] = "none"
    result = runner.invoke(args=["sandbox", "check"])
    assert result.exit_code == 1 and "FAIL" in result.output
