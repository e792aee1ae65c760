"""The engine's generic mechanics: faults are hooks of a scenario, not special cases."""

from __future__ import annotations

import dataclasses

from meshca.sim.builtin import builtin_config
from meshca.sim.emulator import Result
from meshca.sim.engine import Hook, Rehearsal, Scenario
from meshca.sim.start import MeshShape


def run(scenario, **kw):
    r = Rehearsal(builtin_config(clusters=1, namespaces=2, batch_size=1), scenario, shape=MeshShape(workloads=1), **kw)
    return r, r.run()


def test_a_before_hook_replaces_a_command_and_the_route_stops_there():
    fault = Scenario("restart-fails", "t", "t", hooks=(Hook("before", "A2.restart.cart", lambda ctx: Result(2, stderr="Error MCA0851 cart/deployment/api: did not roll out"), times=1),))
    r, doc = run(fault)
    last = doc["steps"][-1]
    assert last["step"] == "A2.restart.cart" and last["error"].startswith("Error MCA0851")
    assert doc["summary"]["stoppedAt"] == last["index"] == doc["summary"]["firstBrokenStep"]
    # The namespace was never restarted: its pods still run the old revision.
    c = r.mesh.clusters["cluster-1"]
    assert {p.revision for w in c.workloads.values() if w.namespace == "cart" for p in w.pods} == {"default"}


def test_a_gate_that_fails_then_passes_on_a_later_poll():
    def late_restart(ctx):
        if ctx.attempt == 3:  # the rollout finishes only while the gate polls
            for ns in ("frontend", "cart"):
                ctx.cluster.restart_namespace(ns, ctx.rehearsal.config.rev1)

    skip = lambda ctx, steps: [s for s in steps if not (s.action == "restart" and s.phase == "distribute-root")]  # noqa: E731
    r, doc = run(Scenario("late", "t", "t", steps=skip, hooks=(Hook("poll", "A3.gate.root-cert", late_restart, times=None),)))
    gate = next(s for s in doc["steps"] if s["step"] == "A3.gate.root-cert")
    assert gate["gates"] == {"A3.gate.root-cert": "pass"}
    assert doc["summary"]["completed"] and doc["summary"]["firstBrokenStep"] is None
    # 3 polls of 15 s: the clock moved while the gate waited.
    assert gate["clockMinutes"] >= next(s for s in doc["steps"] if s["step"] == "A2.label.cart")["clockMinutes"] + 45 / 60


def test_an_unreachable_cluster_stops_the_next_step_with_a_coded_line():
    def cut(ctx):
        ctx.cluster.reachable = False

    r, doc = run(Scenario("cut", "t", "t", hooks=(Hook("after", "A2.label.frontend", cut),)))
    last = doc["steps"][-1]
    assert last["step"] == "A2.restart.frontend" and "unreachable" in last["error"]


def test_a_certificate_expiring_during_the_move():
    # A namespace moved to REV1, then REV1's istiod disappears for longer than a certificate lives.
    def remove_and_wait(ctx):
        ctx.cluster.remove_istiod(ctx.rehearsal.config.rev1)
        ctx.mesh.advance(25 * 60)

    r, doc = run(Scenario("expire", "t", "t", hooks=(Hook("after", "A2.restart.frontend", remove_and_wait),)), keep_going=True)
    step = next(s for s in doc["steps"] if s["step"] == "A2.restart.frontend")
    assert step["failedPairs"] and all("expired" in p["reason"] for p in step["failedPairs"])
    assert all("frontend" in p["client"] + p["server"] for p in step["failedPairs"])


def test_steps_rerun_only_when_their_command_or_gate_inputs_change():
    cfg = builtin_config(clusters=1, namespaces=2, batch_size=1)
    r = Rehearsal(cfg)
    from meshca import plan as planmod

    pos = planmod.route(cfg)[1]
    steps = {s.id: s for s in planmod.plan_at(cfg, pos).clusters[0].steps}
    install = steps[f"A1.install.{cfg.rev1}"]
    gate = steps["A0.gate.root-of-trust"]
    assert not r._changed(install, dataclasses.replace(install, argv=install.argv[:-2]))  # ignore_changes, as the component
    assert r._changed(gate, dataclasses.replace(gate, params={**gate.params, "namespaceDigest": "other"}))
    assert not r._changed(gate, dataclasses.replace(gate, title="renamed"))
    # operational gate inputs never replace a gate (issue 9 finding 2)
    assert not r._changed(gate, dataclasses.replace(gate, params={**gate.params, "timeoutSeconds": 5000, "concurrency": 2}))
    verify = steps["A1.verify-asmcli"]
    # create is in ignore_changes: another asmcli path never re-runs a completed step
    assert not r._changed(verify, dataclasses.replace(verify, argv=("meshca", "tool-version", "--expect", "x", "--", "./other-asmcli", "--version")))


def test_verdicts_are_deterministic():
    def essence(doc):
        return [(s["index"], s["cluster"], s["step"], s["handshakes"], sorted((p["client"], p["server"], p["reason"]) for p in s["failedPairs"]), s["gates"]) for s in doc["steps"]]

    from meshca.sim import scenarios

    first = run(scenarios.get("big-bang"))[1]
    second = run(scenarios.get("big-bang"))[1]
    assert essence(first) == essence(second) and first["summary"] == second["summary"]
