"""Every scenario's verdict, against an independent derivation from the trust rules.

``Oracle`` is a second, symbolic model written from trust-model.md alone: roots are labels
(today's root, the Mesh CA, each generated root), proxies are (certificate root, bundle,
trust domain) tuples, and a call works when each side's bundle holds the other's root and
the client's trust domain is the server's or one of its aliases. It reads only the steps
the rehearsal applied (their argv and params: what was done, not what happened) and predicts,
step by step, the exact failing pairs and every gate verdict. The rehearsal's real
handshakes and real gate runs must agree with it exactly.
"""

from __future__ import annotations

import dataclasses
import os
import shlex

import pytest
import yaml

from meshca import plan as planmod
from meshca.certs import fingerprint, load_certs
from meshca.config import load_stack
from meshca.sim import scenarios
from meshca.sim.builtin import builtin_config
from meshca.sim.engine import Hook, Rehearsal, Scenario
from meshca.sim.start import MeshShape, base_aliases, workload_names

MESH = "MESHCA-ROOT"
WORKLOADS = 2  # api (Deployment), store (StatefulSet): enough kinds, few pairs


def file_root(path) -> str:
    return fingerprint(load_certs(open(path, "rb").read())[0])


def norm(path) -> str:
    return os.path.normpath(path)


@dataclasses.dataclass
class P:  # one proxy state (every pod of a workload is alike in these scenarios)
    rev: str | None
    cert: str | None
    cert_td: str | None
    bundle: frozenset
    td: str
    aliases: tuple


class OCluster:
    def __init__(self, oracle: "Oracle", name: str):
        self.o, self.name = oracle, name
        base, cfg = oracle, oracle.base
        migrate = cfg.use_case == "migrate"
        self.cacerts = None if migrate else base.today
        self.ica = base.today if migrate else None
        self.gen = 0
        old_aliases = () if migrate else (base_aliases(cfg.fleet_project) if base.sw["citadel-keeps-base-aliases"] else ())
        self.istiods = {cfg.old_revision: dict(ca="citadel", multiroot=False, root=base.today, td="cluster.local", aliases=old_aliases, ca_certs=())}
        self.configs = dict(self.istiods)
        # Each revision's ConfigMap caCertificates: istiod loads them into ca_certs when it starts.
        self.mesh_ca_certs = {cfg.old_revision: ()}
        self.labels = {n.name: ({"istio-injection": "enabled"} if migrate else {"istio.io/rev": cfg.old_revision}) for n in cfg.namespaces}
        self.workloads = {(n.name, w): self.inject(cfg.old_revision) for n in cfg.namespaces for _, w in workload_names(oracle.workloads)}
        self.gateways = {}
        for g in cfg.gateways:
            labels = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
            if not migrate:
                labels["istio.io/rev"] = cfg.old_revision
            self.gateways[g.deployment] = dict(labels=labels, bound=cfg.old_revision if migrate else None, rev=cfg.old_revision, pod=self.inject(cfg.old_revision))

    def bundle(self, rev):
        i = self.istiods[rev]
        if i["ca"] == "citadel":
            roots = {i["root"]} if i["root"] else set()
            if i["multiroot"]:
                roots |= set(i["ca_certs"])
        else:
            roots = {MESH}
            if i["multiroot"] and i["root"]:
                roots.add(i["root"])
            if i["multiroot"]:  # merged with ISTIO_MULTIROOT_MESH, whether or not istiod runs a CA
                roots |= set(i["ca_certs"])
        return frozenset(roots - self.o.excluded.get((self.name, rev), set()))

    def inject(self, rev):
        i = self.istiods[rev]
        mesh = i["ca"] == "mesh_ca"
        return P(rev, MESH if mesh else i["root"], self.o.fleet if mesh else "cluster.local", self.bundle(rev), i["td"], i["aliases"])

    def load_ca(self):
        if self.cacerts:
            return self.cacerts
        if self.ica:
            return self.ica
        if not self.o.sw["phase-c-new-root"]:
            return None
        self.gen += 1
        self.ica = f"NEW:{self.name}:{self.gen}"
        return self.ica

    def start(self, rev):
        i = self.istiods[rev]
        i["ca_certs"] = self.mesh_ca_certs[rev]
        i["root"] = self.load_ca() if (i["ca"] == "citadel" or self.o.sw["rev2-runs-citadel-ca"]) else None
        self.push(rev)

    def push(self, rev):
        for p in [*self.workloads.values(), *(g["pod"] for g in self.gateways.values())]:
            if p.rev == rev:
                p.bundle, p.td, p.aliases = self.bundle(rev), self.istiods[rev]["td"], self.istiods[rev]["aliases"]

    def injection(self, ns):
        labels = self.labels[ns]
        assert not ("istio.io/rev" in labels and "istio-injection" in labels), "both labels"
        return labels.get("istio.io/rev") or ("default" if labels.get("istio-injection") == "enabled" else None)

    def pods(self):
        yield from ((ns, w, p) for (ns, w), p in self.workloads.items())
        yield from (("istio-system", name, g["pod"]) for name, g in self.gateways.items())

    # -- steps ----------------------------------------------------------------------------------

    def apply(self, step):
        a, params, argv = step.action, step.params, list(step.argv)
        if a == "install":
            rev = argv[argv.index("--revision_name") + 1]
            ca = argv[argv.index("--ca") + 1]
            options = [argv[i + 1] for i, x in enumerate(argv) if x == "--option"]
            if "--root_cert" in argv:
                assert self.cacerts is None
                self.cacerts = file_root(self.o.plan.project_dir / argv[argv.index("--root_cert") + 1])
            fleet_aliases = base_aliases(self.o.base.fleet_project)
            if ca == "citadel":
                td, aliases = "cluster.local", fleet_aliases if self.o.sw["citadel-keeps-base-aliases"] else ()
            else:
                td, aliases = self.o.fleet, fleet_aliases
            if "ca-migration-meshca" in options:
                aliases = ("cluster.local",) if self.o.sw["overlay-aliases"] == "replace" else (*aliases, "cluster.local")
            ca_certs = (MESH,) if "ca-migration-citadel" in options else ()
            for overlay in [argv[i + 1] for i, x in enumerate(argv) if x == "--custom_overlay"]:
                ca_certs += self.o.overlay_roots(overlay)
            self.istiods[rev] = dict(ca=ca, multiroot=bool({"ca-migration-citadel", "ca-migration-meshca"} & set(options)), root=None, td=td, aliases=tuple(aliases), ca_certs=ca_certs)
            self.configs[rev] = self.istiods[rev]
            self.mesh_ca_certs[rev] = ca_certs  # asmcli renders the ConfigMap
            self.start(rev)
        elif a == "write-overlay":
            # `meshca overlay citadel-root --root-cert F --output P`: P lists F's root.
            self.o.written[norm(argv[argv.index("--output") + 1])] = (file_root(self.o.plan.project_dir / argv[argv.index("--root-cert") + 1]),)
        elif a == "drop-root":
            # `meshca mesh-config drop-root --revision R --root-cert F`: R's ConfigMap no longer
            # lists F's root; istiod R reads that at its next start (C3).
            rev = argv[argv.index("--revision") + 1]
            gone = file_root(self.o.plan.project_dir / argv[argv.index("--root-cert") + 1])
            self.mesh_ca_certs[rev] = tuple(r for r in self.mesh_ca_certs[rev] if r != gone)
        elif a == "label":
            ns = argv[argv.index("namespace") + 1]
            for change in argv[argv.index(ns) + 1 :]:
                if change.startswith("--"):
                    continue
                if change.endswith("-"):
                    self.labels[ns].pop(change[:-1], None)
                else:
                    k, v = change.split("=", 1)
                    self.labels[ns][k] = v
        elif a == "restart":
            ns, rev = params["namespace"], params["revision"]
            for (wns, w), p in list(self.workloads.items()):
                if wns == ns and p.rev != rev:  # meshca restart skips what already runs on REV
                    self.workloads[(wns, w)] = self.inject(self.injection(ns))
        elif a == "gateway":
            name, rev = params["deployment"], params["revision"]
            g = self.gateways.get(name)
            labels = {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": rev}
            if g is None or g["rev"] != rev:
                self.gateways[name] = dict(labels=labels, bound=None, rev=rev, pod=self.inject(rev))
        elif a == "delete-gateway":
            if "deployment" in params:
                self.gateways.pop(params["deployment"], None)
            else:
                sel = dict(kv.split("=") for kv in params["selector"].split(","))
                for name in [n for n, g in self.gateways.items() if all(g["labels"].get(k) == v for k, v in sel.items())]:
                    del self.gateways[name]
        elif a == "delete-istiod":
            self.istiods.pop(params["revision"], None)  # its proxies keep what they have (orphans)
        elif a == "delete-ca-secrets":
            self.cacerts = self.ica = None
        elif a == "restart-control-plane":
            for rev in sorted(self.istiods, key=lambda r: "istiod" if r == "default" else f"istiod-{r}"):
                self.start(rev)
            for g in self.gateways.values():
                g["pod"] = self.inject(g["bound"] or g["rev"])
        else:
            # The default tag and webhooks (issue 9 finding 10) select only istio-injection=enabled /
            # istio.io/rev=default namespaces, which no moved namespace carries any more.
            assert a in (
                "gate", "verify-asmcli", "preflight", "apply-istiod-service", "delete-installed-state", "backup-ca-secret",
                "check-injection-labels", "empty-injector", "tag-default", "verify-webhooks", "delete-webhooks", "gateway-ready",
            ), a

    def gate(self, step) -> bool:
        params = step.params
        check = params["check"]
        if check == "root-of-trust":
            return file_root(self.o.plan.project_dir / params["rootCert"]) == (self.cacerts or self.ica)
        citadel = file_root(self.o.plan.project_dir / params["citadelRoot"])
        retiring = list(params["retiring"])

        def retired(ns, name):
            for r in retiring:
                if r["namespace"] != ns or ns != "istio-system" or name not in self.gateways:
                    continue
                if r.get("deployment") == name:
                    return True
                if "selector" in r:
                    sel = dict(kv.split("=") for kv in r["selector"].split(","))
                    if all(self.gateways[name]["labels"].get(k) == v for k, v in sel.items()):
                        return True
            return False

        counted = [(ns, n, p) for ns, n, p in self.pods() if not retired(ns, n)]
        if not counted:
            return False
        # UNKNOWN: a root that is neither (forbid-only, issue 9 finding 14)
        labels = lambda roots: {x for x, root in (("CITADEL", citadel), ("MESHCA", MESH)) if root in roots} | ({"UNKNOWN"} if set(roots) - {citadel, MESH} else set())  # noqa: E731
        if check == "root-cert":
            return all(set(params["require"]) <= labels(p.bundle) and not (set(params["forbid"]) & labels(p.bundle)) for _, _, p in counted)
        if check == "workload-cert":
            return all(labels({p.cert}) and labels({p.cert}) <= set(params["require"]) for _, _, p in counted)
        if check == "trust-domain":
            need = {"cluster.local", self.o.fleet}
            accepts = lambda rev: {self.configs[rev]["td"], *self.configs[rev]["aliases"]}  # noqa: E731
            return all(need <= accepts(r) for r in params["revisions"]) and all(p.cert_td in accepts(p.rev) for _, _, p in counted)
        raise AssertionError(check)


class Oracle:
    def __init__(self, rehearsal: Rehearsal, excluded=None):
        self.base, self.plan, self.sw = rehearsal.base_config, rehearsal.config, rehearsal.switches
        self.workloads = rehearsal.shape.workloads
        self.today = file_root(self.base.ca_files.root_cert)
        self.fleet = f"{self.base.fleet_project}.svc.id.goog"
        self.excluded = {}
        self.written = {}  # files the steps wrote: overlay path -> the roots it lists
        self.pending = dict(excluded or {})  # step id -> (revision, roots) removed after that step
        self.clusters = {c.name: OCluster(self, c.name) for c in self.base.clusters}

    def root(self, label):
        return self.today if label == "TODAY" else label

    def overlay_roots(self, path) -> tuple:
        """Roots an asmcli --custom_overlay adds to meshConfig.caCertificates: a file a step wrote
        (by its argv), else the project's own overlay file, read here."""
        if norm(path) in self.written:
            return self.written[norm(path)]
        doc = yaml.safe_load((self.plan.project_dir / path).read_text()) or {}
        entries = ((doc.get("spec") or {}).get("meshConfig") or {}).get("caCertificates") or ()
        return tuple(fingerprint(load_certs(e["pem"].encode())[0]) for e in entries)

    def failing(self) -> set[tuple[str, str]]:
        apps, entries, gws = [], {}, []
        for c in self.clusters.values():
            for (ns, w), p in c.workloads.items():
                apps.append(((c.name, ns, w), p))
                if w == "api":
                    entries[(c.name, ns)] = ((c.name, ns, w), p)
            gws += [((c.name, "istio-system", name), g["pod"]) for name, g in c.gateways.items()]
        pairs = [(a, e) for a in apps for key, e in entries.items() if key != a[0][:2]] + [(g, e) for g in gws for e in entries.values()]
        bad = set()
        for (cref, c), (sref, s) in pairs:
            ok = c.cert is not None and s.cert is not None and s.cert in c.bundle and c.cert in s.bundle
            if ok and self.sw["authz-names-principals"]:
                ok = c.cert_td in (s.td, *s.aliases)
            if not ok:
                bad.add(("/".join(cref), "/".join(sref)))
        return bad

    def walk(self, steps):
        """Per applied step: (failing pairs, gate verdict or None)."""
        out = []
        for step in steps:
            c = self.clusters[step.cluster]
            c.apply(step)
            verdict = c.gate(step) if step.is_gate else None
            for key in (step.id, f"{step.cluster}:{step.id}"):
                if key in self.pending:
                    rev, roots = self.pending.pop(key)
                    self.excluded[(step.cluster, rev)] = set(roots)
                    c.push(rev)
            out.append((self.failing(), verdict))
        return out


def small():
    return builtin_config(clusters=2, namespaces=3, batch_size=2)


def check_against_oracle(rehearsal: Rehearsal, doc: dict, excluded=None):
    oracle = Oracle(rehearsal, excluded)
    assert not oracle.failing(), "the baseline must work"
    assert not doc["steps"][0]["failedPairs"]
    predicted = oracle.walk(rehearsal.applied)
    steps = doc["steps"][1:]
    assert len(steps) == len(predicted) == len(rehearsal.applied)
    first = None
    for s, (bad, gate) in zip(steps, predicted):
        got = {(p["client"], p["server"]) for p in s["failedPairs"]}
        assert got == bad, f"step {s['index']} {s['cluster']} {s['step']}: extra {sorted(got - bad)[:3]} missing {sorted(bad - got)[:3]}"
        if gate is not None:
            assert s["gates"] == {s["step"]: "pass" if gate else "fail"}, f"step {s['index']} {s['step']}"
        if first is None and (bad or gate is False):
            first = s["index"]
    assert doc["summary"]["firstBrokenStep"] == first
    assert doc["summary"]["handshakesFailed"] == sum(len(b) for b, _ in predicted)
    return predicted


def run(scenario, config=None, **kw):
    r = Rehearsal(config or small(), scenario, shape=MeshShape(workloads=kw.pop("workloads", WORKLOADS)), **kw)
    return r, r.run()


# ----------------------------------------------------------------------------- the scenarios


def meshed_bundles(r):
    return [{fingerprint(c) for c in p.bundle} for cl in r.mesh.clusters.values() for p in cl.pods() if p.meshed]


@pytest.mark.parametrize("rev2_ca", [True, False], ids=["rev2-ca-on", "rev2-ca-off"])
def test_canary_keeps_every_pair_working_after_every_step(rev2_ca):
    """With meshca:rev2CitadelRoot (the default) the route holds whether or not REV2's istiod runs a CA."""
    r, doc = run(scenarios.get("canary"), switches={"rev2-runs-citadel-ca": rev2_ca})
    check_against_oracle(r, doc)
    assert doc["assumptions"]["rev2-runs-citadel-ca"] is rev2_ca and r.config.rev2_citadel_root
    assert doc["summary"]["handshakesFailed"] == 0
    if rev2_ca:
        # A REV2 that runs its CA (a later asmcli) self-signs a new root once C2 deleted the CA
        # secrets; C4 requires exactly the Mesh CA roots and stops the route (issue 9 finding 14).
        last = doc["steps"][-1]
        assert last["step"] == "C4.gate.old-root-absent" and last["gates"] == {last["step"]: "fail"}
        assert "forbidden UNKNOWN" in last["gateReason"] and not doc["summary"]["completed"]
    else:
        assert doc["summary"]["completed"] and doc["summary"]["gatesFailed"] == 0 and doc["summary"]["firstBrokenStep"] is None
        assert doc["steps"][-1]["gates"] == {"C4.gate.old-root-absent": "pass"}
    # B1 writes the overlay before REV2's install reads it; C2 drops the root before C3 restarts istiod.
    for c in r.config.clusters:
        order = [s.id for s in r.applied if s.cluster == c.name]
        assert order.index("B1.citadel-root-overlay") < order.index(f"B1.install.{r.config.rev2}")
        if "C3.restart-control-plane" in order:  # rev2-ca-on stops at the first cluster's C4
            assert order.index("C2.delete-ca-secrets") < order.index("C2.drop-citadel-root") < order.index("C3.restart-control-plane")
    # The drop worked: today's root left every proxy's bundle, by fingerprint.
    today = file_root(r.config.ca_files.root_cert)
    if not rev2_ca:  # (rev2-ca-on stops before the other clusters reach phase C)
        assert all(today not in b for b in meshed_bundles(r))


def test_big_bang_breaks_calls_between_moved_and_unmoved_namespaces():
    # On the pinned overlay (ENABLE_CA_SERVER: false, the default since issue 9 finding 14) the
    # Mesh CA-only revision also fails the A3 gate and the route stops there.
    _, pinned = run(scenarios.get("big-bang"))
    assert pinned["steps"][-1]["step"] == "A3.gate.root-cert" and not pinned["summary"]["completed"]
    r, doc = run(scenarios.get("big-bang"), switches={"rev2-runs-citadel-ca": True})
    predicted = check_against_oracle(r, doc)
    first = doc["summary"]["firstBrokenStep"]
    step = doc["steps"][first]
    assert step["step"] == "A2.restart.frontend" and step["cluster"] == "cluster-1"
    # Both directions between the first moved namespace and every other fail.
    bad = predicted[first - 1][0]
    assert ("cluster-1/frontend/store", "cluster-1/cart/api") in bad and ("cluster-1/cart/store", "cluster-1/frontend/api") in bad
    # calls recover by the end; C4 then finds the new self-signed root of a CA-running REV2
    assert not doc["steps"][-1]["failedPairs"] and doc["steps"][-1]["step"] == "C4.gate.old-root-absent"


def test_skip_restart_fails_the_root_cert_gate_without_breaking_calls():
    r, doc = run(scenarios.get("skip-restart"))
    check_against_oracle(r, doc)
    last = doc["steps"][-1]
    assert last["step"] == "A3.gate.root-cert" and last["gates"] == {"A3.gate.root-cert": "fail"}
    assert "MCA0440" in last["gateReason"] and "missing MESHCA" in last["gateReason"]
    assert doc["summary"]["firstBrokenStep"] == last["index"] and doc["summary"]["handshakesFailed"] == 0
    assert not doc["summary"]["completed"]
    assert not any(s["step"].startswith("A2.restart") for s in doc["steps"])


@pytest.mark.parametrize("rev2_ca", [True, False], ids=["rev2-ca-on", "rev2-ca-off"])
def test_early_secret_delete_breaks_calls_of_rev1_workloads(rev2_ca):
    r, doc = run(scenarios.get("early-secret-delete"), switches={"rev2-runs-citadel-ca": rev2_ca})
    check_against_oracle(r, doc)
    assert [s.id for s in r.applied if s.cluster == "cluster-1" and s.procedure in ("C2", "C3")][:3] == [
        "C2.delete-ca-secrets", "C2.drop-citadel-root", "C3.restart-control-plane"
    ]
    first = doc["steps"][doc["summary"]["firstBrokenStep"]]
    # Neither the deletion nor the ConfigMap edit changes a bundle before istiod restarts.
    assert (first["cluster"], first["step"]) == ("cluster-1", "C3.restart-control-plane")
    # Every failing pair involves a workload still on REV1 (or a gateway signed by the new root).
    assert all("checkout" in p["client"] + p["server"] or "istio-system" in p["client"] or "cluster-2" in p["client"] + p["server"] for p in first["failedPairs"])
    assert doc["summary"]["handshakesFailed"] > 0


def test_wrong_root_is_caught_by_the_preflight_gate():
    r, doc = run(scenarios.get("wrong-root"))
    check_against_oracle(r, doc)
    assert doc["summary"]["firstBrokenStep"] == 1
    s = doc["steps"][1]
    assert s["step"] == "A0.gate.root-of-trust" and s["gates"] == {"A0.gate.root-of-trust": "fail"} and s["gateReason"].startswith("Error MCA0302 ")
    assert doc["summary"]["handshakesFailed"] == 0 and not doc["summary"]["completed"]


def test_wrong_root_without_preflight_breaks_calls():
    r, doc = run(scenarios.get("wrong-root"), preflight=False)
    check_against_oracle(r, doc)
    assert not any(s["step"].startswith("A0.") for s in doc["steps"])
    first = doc["steps"][doc["summary"]["firstBrokenStep"]]
    assert (first["cluster"], first["step"]) == ("cluster-1", "A2.restart.frontend")
    assert doc["summary"]["handshakesFailed"] > 0


@pytest.mark.parametrize("name,phase,back", [("rollback-a", "distribute-root", "baseline"), ("rollback-b", "mesh-ca", "distribute-root-done")])
def test_rollback_mid_batch_then_resume_keeps_every_pair_working(name, phase, back):
    r, doc = run(scenarios.get(name))
    check_against_oracle(r, doc)
    assert doc["summary"]["completed"] and doc["summary"]["handshakesFailed"] == 0 and doc["summary"]["gatesFailed"] == 0
    rolled = [s for s in doc["steps"] if s["rollback"]]
    assert rolled and all(s["phase"] == phase for s in rolled)
    procedure = "A6" if phase == "distribute-root" else "B5"
    assert any(s["step"].startswith(f"{procedure}.delete-istiod.") for s in rolled)
    # The revision removed by the rollback is installed again when the route resumes.
    rev = r.config.rev1 if phase == "distribute-root" else r.config.rev2
    installs = [s["index"] for s in doc["steps"] if s["step"] == f"{'A1' if phase == 'distribute-root' else 'B1'}.install.{rev}" and s["cluster"] == "cluster-1"]
    assert len(installs) == 2 and installs[0] < rolled[0]["index"] < installs[1]
    assert f"{back}: after the rollback" in doc["settings"]["routePoints"]


# ----------------------------------------------------------------------------- model switches


def test_citadel_root_removed_from_rev2_bundle_breaks_exactly_the_predicted_pairs():
    cfg = small()
    rev2 = cfg.rev2
    today = file_root(cfg.ca_files.root_cert)

    def drop(ctx):
        istiod = ctx.cluster.istiods[rev2]
        istiod.excluded_roots.add(today)
        ctx.cluster.push(rev2)

    scenario = Scenario("no-citadel-in-rev2", "test", "REV2 pushes no Citadel root", hooks=(Hook("after", f"B1.install.{rev2}", drop, times=None),))
    r, doc = run(scenario, cfg)
    excluded = {f"{c.name}:B1.install.{rev2}": (rev2, {today}) for c in cfg.clusters}
    predicted = check_against_oracle(r, doc, excluded)
    first = doc["steps"][doc["summary"]["firstBrokenStep"]]
    assert (first["cluster"], first["step"]) == ("cluster-1", "B2.restart.frontend")
    assert sum(len(b) for b, _ in predicted) > 0


@pytest.mark.parametrize("rev2_ca", [True, False], ids=["rev2-ca-on", "rev2-ca-off"])
def test_the_guides_literal_rev2_install_rests_on_rev2_running_its_ca(rev2_ca):
    """meshca:rev2CitadelRoot false: REV2 proxies trust the Citadel root only through istiod's own
    CA; with ENABLE_CA_SERVER false (the pinned overlay) the first B2 restart breaks, as predicted."""
    r, doc = run(scenarios.get("no-root-overlay"), switches={"rev2-runs-citadel-ca": rev2_ca})
    predicted = check_against_oracle(r, doc)
    assert not r.config.rev2_citadel_root
    assert not [s for s in r.applied if s.action in ("write-overlay", "drop-root")]
    assert not any("--custom_overlay" in s.argv for s in r.applied)
    if rev2_ca:
        # every call holds; C4 then finds REV2's new self-signed root (issue 9 finding 14)
        assert doc["summary"]["handshakesFailed"] == 0
        assert doc["steps"][-1]["gates"] == {"C4.gate.old-root-absent": "fail"} and "forbidden UNKNOWN" in doc["steps"][-1]["gateReason"]
        return
    first = doc["steps"][doc["summary"]["firstBrokenStep"]]
    assert (first["cluster"], first["step"]) == ("cluster-1", "B2.restart.frontend")
    assert not any(s["failedPairs"] for s in doc["steps"][: first["index"]])
    # Every broken pair has the first moved namespace on one side, in both directions.
    bad = predicted[first["index"] - 1][0]
    assert bad and all("cluster-1/frontend/" in c + s for c, s in bad)
    assert ("cluster-1/cart/api", "cluster-1/frontend/api") in bad and ("cluster-1/frontend/api", "cluster-1/cart/api") in bad
    assert sum(len(b) for b, _ in predicted) == doc["summary"]["handshakesFailed"] > 0


def test_skipping_the_drop_leaves_the_citadel_root_and_fails_the_old_root_gate():
    r, doc = run(scenarios.get("skip-drop-root"))
    check_against_oracle(r, doc)
    assert any(s.id == "B1.citadel-root-overlay" for s in r.applied) and not any(s.action == "drop-root" for s in r.applied)
    last = doc["steps"][-1]
    assert last["step"] == "C4.gate.old-root-absent" and last["gates"] == {last["step"]: "fail"}
    assert last["gateReason"].startswith("Error MCA0440 ") and "forbidden CITADEL" in last["gateReason"]
    assert doc["summary"]["handshakesFailed"] == 0 and not doc["summary"]["completed"]
    today = file_root(r.config.ca_files.root_cert)
    assert all(today in b for b in meshed_bundles(r))  # REV2's ConfigMap still lists it


def test_citadel_revisions_without_fleet_alias_fail_the_trust_domain_gate():
    r, doc = run(scenarios.get("canary"), switches={"citadel-keeps-base-aliases": False})
    check_against_oracle(r, doc)
    last = doc["steps"][-1]
    assert last["step"] == "B1.gate.trust-domain" and last["gates"][last["step"]] == "fail"


def test_keep_going_past_the_trust_domain_gate_shows_the_denied_calls():
    r, doc = run(scenarios.get("canary"), switches={"citadel-keeps-base-aliases": False}, keep_going=True)
    check_against_oracle(r, doc)
    assert doc["summary"]["completed"] and doc["summary"]["gatesFailed"] >= 1
    broken = [s for s in doc["steps"] if s["failedPairs"]]
    assert broken and broken[0]["step"] == "B2.restart.frontend"
    assert all("trust domain builtin-mesh.svc.id.goog" in p["reason"] for s in broken for p in s["failedPairs"])


def test_dev_stack_canary_matches_the_rules():
    r, doc = run(scenarios.get("canary"), load_stack(planmod.__file__.rsplit("/meshca/", 1)[0], "dev"), workloads=3)
    check_against_oracle(r, doc)
    assert doc["summary"]["completed"] and doc["summary"]["firstBrokenStep"] is None


# ----------------------------------------------------------------------------- one step list, two consumers


@pytest.mark.parametrize("stack", ["dev", "csm116"])
def test_rehearsal_applies_exactly_the_plans_steps(stack):
    config = load_stack(planmod.__file__.rsplit("/meshca/", 1)[0], stack)
    r, doc = run(scenarios.get("canary"), config, workloads=1)
    expected = []
    previous = {}
    for i, pos in enumerate(planmod.route(config)):
        # What the program's probe finds: no cacerts on migrate until A1 ran, plugged-in on upgrade.
        fact = "matching" if (config.use_case == "upgrade" or i > 1) else "absent"
        plan = planmod.plan_at(config, pos, cacerts={c.name: fact for c in config.clusters})
        for cp in plan.clusters:
            before = previous.get(cp.cluster.name, set())
            expected += [s for s in cp.steps if s.id not in before]
            previous[cp.cluster.name] = {s.id for s in cp.steps}
    got = [(s.cluster, s.id, s.argv, s.stdin) for s in r.applied]
    assert got == [(s.cluster, s.id, s.argv, s.stdin) for s in expected]
    assert [(s["cluster"], s["step"]) for s in doc["steps"][1:]] == [(s.cluster, s.id) for s in expected]
    # The shell lines the Pulumi Commands run are these argv.
    assert shlex.split(shlex.join(r.applied[2].argv)) == list(r.applied[2].argv)
