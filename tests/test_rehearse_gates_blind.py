"""The rehearsal's failure summary says when gates passed while pairs failed, and why: gates
are per cluster, the failing pairs crossed clusters (issue 12; MCA1005)."""

from __future__ import annotations

import json

from meshca import cli
from meshca.sim.report import gates_blind

TWO = ["--clusters", "2", "--namespaces", "2", "--workloads", "1", "--quiet"]


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cross_cluster_pairs_failing_behind_passing_gates_are_explained(capsys, tmp_path):
    report = tmp_path / "r.html"
    rc, out, err = run(capsys, "rehearse", "--scenario", "early-secret-delete", *TWO, "--report", str(report))
    assert rc == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("Error MCA0511 ")  # the failure line stays last
    warning = lines[-2]
    assert warning.startswith("Warning MCA1005 rehearse builtin/early-secret-delete: ")
    assert "pair(s) failed: every failing pair crosses clusters, and a gate judges only its own cluster's proxies" in warning
    assert "cluster-1/" in warning and "-> cluster-2/" in warning
    assert "Why the gates passed:" in report.read_text()
    assert "why the gates passed: " in out

    rc, out, _ = run(capsys, "rehearse", "--scenario", "early-secret-delete", *TWO, "--json")
    sm = json.loads(out)["summary"]
    blind = sm["gatesBlind"]
    assert sm["gatesFailed"] == 0 and sm["handshakesFailed"] > 0
    assert blind["failedPairs"] == blind["crossCluster"] > 0 and blind["gatesPassed"] > 0


def test_no_explanation_when_a_gate_failed_or_nothing_failed(capsys):
    rc, out, err = run(capsys, "rehearse", "--scenario", "skip-restart", *TWO, "--json")
    assert rc == 1 and "gatesBlind" not in json.loads(out)["summary"] and "MCA1005" not in err
    rc, out, err = run(capsys, "rehearse", *TWO, "--json")
    assert rc == 0 and "gatesBlind" not in json.loads(out)["summary"] and "MCA1005" not in err


def _doc(pairs, gates=("pass",), gates_failed=0):
    return {
        "summary": {"handshakesFailed": len(pairs), "gatesFailed": gates_failed},
        "steps": [
            {"failedPairs": [{"client": c, "server": s, "reason": "x"} for c, s in pairs], "gates": {f"g{i}": v for i, v in enumerate(gates)}},
            {"failedPairs": [{"client": c, "server": s, "reason": "x"} for c, s in pairs], "gates": {}},  # the same pairs again
        ],
    }


def test_the_reason_names_mixed_and_in_cluster_failures():
    mixed = gates_blind(_doc([("a/ns/w", "b/ns/w"), ("a/ns/w", "a/other/w")], gates=("pass", "pass")))
    assert mixed["failedPairs"] == 2 and mixed["crossCluster"] == 1 and mixed["gatesPassed"] == 2
    assert mixed["why"].startswith("1 of them cross clusters, which no gate judges") and mixed["example"] == "a/ns/w -> b/ns/w"
    local = gates_blind(_doc([("a/ns/w", "a/other/w")]))
    assert local["crossCluster"] == 0 and "not the handshake between two proxies" in local["why"]
    assert gates_blind(_doc([("a/ns/w", "b/ns/w")], gates=("fail",), gates_failed=1)) is None
    assert gates_blind(_doc([])) is None
