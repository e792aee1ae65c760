"""Fault rehearsals (meshca/sim/scenarios.py FAULTS): for each fault, on a two-cluster mesh,
the plan's guards keep every caller/callee pair working (zero failed handshakes, judged by
real mTLS handshakes after every step), the fault is reported with its own code, and a rerun
(``pulumi up`` again after the operator's remedy) converges: the route completes, and one more
``pulumi up`` at the end applies nothing."""

from __future__ import annotations

import dataclasses
import json

import re

import pytest

from meshca.cli import main
from meshca.sim import scenarios
from meshca.sim.builtin import builtin_config
from meshca.sim.engine import Hook, Rehearsal
from meshca.sim.report import ok, render_html
from meshca.sim.start import MeshShape

from hardening import parse_coded

CONFIG = builtin_config(clusters=2, namespaces=4, batch_size=2)
SHAPE = MeshShape(workloads=2)
REV1 = CONFIG.rev1
SMALL = ["--clusters", "2", "--namespaces", "4", "--batch-size", "2", "--workloads", "2", "--quiet"]

# The code each fault must be reported with (derived from where meshca meets it, not from a run):
# the step that meets it, and the coded reason's first word.
REPORTED = {
    "restart-fails": [("A2.restart.checkout", "MCA0851")],  # RolloutFailed: meshca restart's wait
    "gate-late": [],  # no stop: the gate polls (its first failure is MCA0440, checked below)
    "interrupted": [("A1.install." + REV1, None), ("A2.restart.checkout", None)],  # pulumi's own SIGINT
    "rollback-mid-batch": [("B2.restart.payments", "MCA0851")],
    "istiod-not-ready": [("A2.restart.frontend", "MCA0850")],  # IstiodNotReady: meshca restart refuses
    "cluster-unreachable": [("preview", "MCA0507")],  # the preview's cacerts probe of every cluster
    "cert-expiry": [("A3.gate.root-cert", "MCA0440"), ("B4.gate.workload-cert", "MCA0441")],
}


@pytest.fixture(scope="module")
def runs():
    cache: dict[str, tuple[Rehearsal, dict]] = {}

    def get(name: str):
        if name not in cache:
            r = Rehearsal(CONFIG, scenarios.get(name), shape=SHAPE)
            cache[name] = (r, r.run())
        return cache[name]

    return get


def test_the_seven_faults_are_named_scenarios():
    assert scenarios.FAULTS == tuple(REPORTED)
    for name in scenarios.FAULTS:
        s = scenarios.SCENARIOS[name]
        assert s.hooks or s.route, name  # faults are mutations and hooks, never verdicts
        assert not {"ok", "expect", "verdict"} & set(vars(s))


def coded_code(reason: str) -> str | None:
    """The MCA code a coded line starts with (after its level), else None."""
    m = re.match(r"^(?:Error|Warning|Info) (MCA\d{4}) ", reason)
    return m.group(1) if m else None


@pytest.mark.parametrize("name", scenarios.FAULTS)
def test_the_guarded_path_survives_the_fault(name, runs):
    r, doc = runs(name)
    assert all(s["handshakes"]["failed"] == 0 for s in doc["steps"]), name
    assert doc["summary"]["handshakesFailed"] == 0 and doc["summary"]["handshakes"] > 0
    assert doc["summary"]["completed"] and ok(doc)
    stops = [(i["step"], coded_code(i["reason"])) for i in doc["summary"]["interruptions"]]
    assert stops == REPORTED[name]
    for i in doc["summary"]["interruptions"]:
        if coded_code(i["reason"]):
            assert parse_coded(i["reason"].split(" | ")[0]).fix
        stop = doc["steps"][i["index"]]
        assert stop["interrupted"] and (stop.get("error") or stop.get("gateReason"))
    assert r.again() == []  # converged: one more pulumi up at the end applies nothing


def _applied(r: Rehearsal, cluster: str, step_id: str):
    return [s for s in r.applied if s.cluster == cluster and s.id == step_id]


def test_a_failed_restart_reruns_only_the_workload_that_did_not_move(runs):
    r, doc = runs("restart-fails")
    [stop] = doc["summary"]["interruptions"]
    assert stop["reason"].startswith("Error MCA0851 checkout/statefulset/store: ") and "ImagePullBackOff" in stop["reason"]
    assert stop["remedy"] == "the workload's image is fixed"
    failed, again = [s for s in doc["steps"] if s["step"] == "A2.restart.checkout" and s["cluster"] == "cluster-1"]
    assert any("Deployment checkout/api restarted" in c for c in failed["changed"])  # moved before the failure
    assert again["attempt"] == 1
    moved = " ".join(again["changed"])
    assert "StatefulSet checkout/store restarted" in moved and "checkout/api" not in moved  # a rerun converges


def test_a_gate_that_passes_on_a_later_poll_keeps_its_first_failure(runs):
    _, doc = runs("gate-late")
    gate = next(s for s in doc["steps"] if s["step"] == "A3.gate.root-cert" and s["cluster"] == "cluster-1")
    assert gate["gates"] == {"A3.gate.root-cert": "pass"} and gate["gatePolls"] == 1  # one re-check, after the rollout
    first = parse_coded(gate["gateFirstReason"])
    assert first.code == "MCA0440" and "payments/" in first.problem and "MCA0444" in first.problem
    assert doc["summary"]["reruns"] == 0


def test_a1_rerun_after_asmcli_created_cacerts_leaves_the_certificate_flags_out(runs):
    r, doc = runs("interrupted")
    first, rerun = _applied(r, "cluster-1", f"A1.install.{REV1}")
    assert "--ca_cert" in first.argv and first.params["cacerts"] == "absent"
    assert "--ca_cert" not in rerun.argv and rerun.params["cacerts"] == "matching"  # the probe saw asmcli's cacerts
    [only] = _applied(r, "cluster-2", f"A1.install.{REV1}")  # the other cluster was never interrupted
    assert "--ca_cert" in only.argv
    labels = [s for s in doc["steps"] if s["step"] == "A2.label.checkout" and s["cluster"] == "cluster-1"]
    restarts = [s for s in doc["steps"] if s["step"] == "A2.restart.checkout" and s["cluster"] == "cluster-1"]
    assert len(labels) == 1 and len(restarts) == 2  # the label was in the state; the restart ran again
    assert all("interrupted (SIGINT)" in i["reason"] for i in doc["summary"]["interruptions"])


def test_a_rollback_from_the_middle_of_a_batch_then_phase_b_again(runs):
    """The rollback runs while the application is still broken on REV2: it never re-runs the
    failed forward restart (which would fail again and block it), found by this rehearsal."""
    _, doc = runs("rollback-mid-batch")
    [stop] = doc["summary"]["interruptions"]
    assert stop["reason"].startswith("Error MCA0851 payments/statefulset/store: ") and "CrashLoopBackOff" in stop["reason"]
    assert stop["rerunFrom"] == "mesh-ca: ROLLBACK from the middle of batch 2/2"
    after = [s for s in doc["steps"] if s["index"] > stop["index"]]
    rollback = [s for s in after if s["rollback"]]
    assert rollback and all(s["step"].startswith("B5.") and "error" not in s for s in rollback)
    assert rollback == after[: len(rollback)]  # the rerun starts with the rollback itself
    assert any(s["step"] == "B5.restart.checkout" and s["cluster"] == "cluster-1" for s in rollback)  # moved before the failure
    again = [s for s in after if not s["rollback"] and s["step"] == "B2.restart.payments" and s["cluster"] == "cluster-1"]
    assert len(again) == 1 and "error" not in again[0]  # phase B again, the application fixed


@pytest.mark.parametrize("phase,forward", [("distribute-root", "A2."), ("mesh-ca", "B2.")])
def test_a_rollback_position_declares_no_forward_move(phase, forward):
    from meshca import plan as planmod

    position = next(p for p in planmod.route(CONFIG) if p.phase == phase and p.batch == 2)
    rolled = planmod.plan_at(CONFIG, dataclasses.replace(position, rollback=True))
    for cluster in rolled.clusters:
        assert not [s.id for s in cluster.steps if s.id.startswith(forward)]
        assert [s.id for s in cluster.steps if s.id.startswith(("A6.restart.", "B5.restart."))]


def test_no_pod_moves_while_the_new_istiod_is_not_ready(runs):
    _, doc = runs("istiod-not-ready")
    [stop] = doc["summary"]["interruptions"]
    assert stop["reason"].startswith(f"Error MCA0850 istio-system/istiod-{REV1}: ")
    record = doc["steps"][stop["index"]]
    assert not any("restarted" in c for c in record["changed"])


def test_an_unreachable_cluster_stops_the_preview_before_any_cluster_moves(runs):
    _, doc = runs("cluster-unreachable")
    [stop] = doc["summary"]["interruptions"]
    assert stop["reason"].startswith("Error MCA0507 cluster cluster-2: the cacerts probe failed: Unable to connect")
    before = doc["steps"][stop["index"] - 1]
    assert (before["cluster"], before["step"]) == ("cluster-2", "A2.restart.cart")  # the last step before the cut
    assert stop["rerunFrom"].startswith("distribute-root: batch 2/2")
    again = doc["steps"][stop["index"] + 1]
    assert again["attempt"] == 1 and again["cluster"] == "cluster-1"  # nothing ran anywhere in between


def test_the_gates_keep_a_stray_certificate_from_expiring(runs):
    _, doc = runs("cert-expiry")
    a3, b4 = doc["summary"]["interruptions"]
    assert "payments/debug-shell (MCA0444 trusts [CITADEL], missing MESHCA)" in a3["reason"]
    assert "payments/debug-shell (MCA0446 certificate issued by CITADEL, required MESHCA)" in b4["reason"]
    # Certificates of 2 hours, a move of over four days (two 48-hour waits): every certificate
    # reached its end dozens of times and was renewed from a running istiod.
    assert doc["assumptions"]["cert-ttl-hours"] == 2
    assert doc["steps"][-1]["clockMinutes"] > 96 * 60


def test_without_the_gates_the_stray_certificate_expires():
    """The contrast: the same fault with the gates left out; the old istiod goes, the bare pod's
    certificate cannot be renewed, and calls to and from it fail once it expires."""
    fault = scenarios.get("cert-expiry")
    no_gates = lambda ctx, steps: [s for s in steps if not s.is_gate or s.params.get("check") == "root-of-trust"]  # noqa: E731
    wait = Hook("after", f"A5.delete-istiod.{CONFIG.old_revision}", lambda ctx: ctx.mesh.advance(3 * 60))
    unguarded = dataclasses.replace(fault, name="cert-expiry-unguarded", steps=no_gates, hooks=fault.hooks + (wait,), remedy=None)
    doc = Rehearsal(CONFIG, unguarded, shape=SHAPE).run()
    failed = [p for s in doc["steps"] for p in s["failedPairs"]]
    assert failed and all("debug-shell" in p["client"] + p["server"] for p in failed)
    assert any("expired" in p["reason"] for p in failed)


# ----------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("name", ["restart-fails", "cluster-unreachable"])
def test_meshca_rehearse_prints_one_coded_line_per_stop_and_passes(name, capsys, tmp_path):
    report = tmp_path / "r.html"
    rc = main(["rehearse", "--scenario", name, *SMALL, "--json", "--report", str(report)])
    out, err = capsys.readouterr()
    assert rc == 0 and "Traceback" not in err
    doc = json.loads(out)
    lines = err.splitlines()
    assert len(lines) == len(doc["summary"]["interruptions"]) == 1
    assert parse_coded(lines[0]).code == "MCA0515" and f"step {doc['summary']['interruptions'][0]['index']} " in lines[0]
    html = report.read_text()
    assert "Stops and reruns" in html and "each followed by a converging rerun" in html


def test_without_reruns_the_first_stop_ends_the_rehearsal(capsys):
    rc = main(["rehearse", "--scenario", "restart-fails", *SMALL, "--no-rerun"])
    _, err = capsys.readouterr()
    assert rc == 1
    [line] = err.splitlines()
    coded = parse_coded(line)
    assert coded.code == "MCA0510" and "cluster-1:A2.restart.checkout failed: MCA0851 " in coded.problem


def test_fault_verdicts_are_deterministic(runs):
    def essence(doc):
        return [(s["index"], s["cluster"], s["step"], s["handshakes"], s["gates"], s.get("attempt", 0)) for s in doc["steps"]]

    again = Rehearsal(CONFIG, scenarios.get("interrupted"), shape=SHAPE).run()
    assert essence(again) == essence(runs("interrupted")[1])
    assert render_html(again, []).count("rerun 1") >= 1
