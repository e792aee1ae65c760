"""The staging stack's whole route (use case ``migrate``, two clusters), promoted from dev, under the REAL
Pulumi CLI against REAL kube-apiservers (issue 11), one batch per phase.

Set-up as the smoke and the dev route (tests/e2e/route_kit.py): one ``Clusters`` of the three contexts
the stacks name (dev's ``dev-1``, staging's ``staging-east`` and ``staging-west``; one kubeconfig), one
project copy with both stacks on one file backend, one invocation log. Every cluster is seeded as
Istio on GKE 1.6 (the smoke's seed, tests/e2e/test_smoke.py ``seed_objects``), its pods injected by
the 1.6 injector (testinfra/istio16_injector.py).

Decision (the dev walk): staging names dev as its upstream (``meshca:upstreamStack:
organization/meshca/dev``, shipped), so staging may never run ahead of dev, and promotion needs dev's
evidence of the very position it copies. The minimal dev walk that lets staging walk its whole route is
therefore dev's whole route, one position ahead each time: at each position dev runs first (preview,
up, its cluster against the table), then ``pulumi stack output --json --stack dev`` (the real CLI) is
the evidence ``meshca promote --from dev --to staging`` reads, the promoted Pulumi.staging.yaml is
compared with the position, and staging runs (preview, up, both clusters against the same table). To
keep the module lean both stacks keep only the namespaces of staging's first batch (frontend, cart,
checkout: "the one dev proved first"), in one batch per phase (dev ``meshca:batchSize: 3``, staging
``meshca:batches: [[frontend, cart, checkout]]``); the namespace count changes nothing the route checks
(two clusters, promotion, upstream). The stacks' other keys are as shipped, except: the clusters'
kubeconfig is the test's; asmcli and istioctl are the stand-ins; gates read proxies through istioctl
with short timeouts; ``meshca:meshcaRoot`` is the stand-ins' test Mesh CA root.

Environments, on the real CLI (at baseline, each on ``pulumi preview --policy-pack policy`` AND ``pulumi
up --skip-preview``, the invocation log, the live clusters and the stack's state showing nothing
applied): staging at ``distribute-root`` while dev is at ``baseline`` (MCA0721: a stack running ahead
of its upstream registers no step: no Command, dynamic resource or Kubernetes object, the guard's state
and the stack's outputs unchanged; measured: the refused ``up`` still records the position's
component resources, MeshcaStack's new inputs and the ``upstream`` StackReference, none of which runs
anything); ``meshca:upstreamStack: acme/meshca/dev`` (MCA0719: the file
backend's only organization is ``organization``, pulumi/pulumi pkg/backend/diy/store.go:168-174);
``meshca:upstreamStack: dev`` (MCA0159: not ORG/PROJECT/STACK). Codes: meshca/messages.yaml.
"""

from __future__ import annotations

import json

import pytest

from testinfra.cluster import DEV_CONTEXT

import route_kit as kit
import test_smoke as smoke

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

EAST = "gke_acme-mesh-staging_us-east1_staging-east"   # Pulumi.staging.yaml meshca:clusters[0]
WEST = "gke_acme-mesh-staging_us-west1_staging-west"   # meshca:clusters[1]
STAGING = [EAST, WEST]
ALL = [DEV_CONTEXT, EAST, WEST]
CLUSTER_NAMES = {DEV_CONTEXT: "dev-1", EAST: "staging-east", WEST: "staging-west"}
NAMESPACES = ("frontend", "cart", "checkout")  # Pulumi.staging.yaml meshca:batches[0]

# ---------------------------------------------------------------------------------------------
# The expected live clusters, transcribed from procedure.md (every cluster alike: "every cluster moves
# through every phase"). REVISION_1 asm-11910-9-distribute-root, REVISION_2 asm-11910-9-meshca-ca-migration.
# - "Two starting points", migrate: old istiod `istiod` (Service, Deployment), revision default; old
#   gateway Deployment istio-ingressgateway without istio.io/rev; namespaces istio-injection=enabled.
# - Namespace rows (istio-injection, istio.io/rev): A2 `kubectl label namespace NS istio.io/rev=REVISION_1
#   istio-injection- --overwrite`; B2 `... istio.io/rev=REVISION_2 --overwrite`.
# - Pod rows: the revision whose injector wrote the namespace's pod ("Which revision a pod runs": 1.6 pod
#   label istio.io/rev, empty = default; 1.19 annotation istio.io/rev).
# - Gateway: revisions that injected the ready pods behind Service istio-ingressgateway; "unknown" = the
#   1.6 gateway (an explicit proxy image, injected by nobody: "What the guide leaves out", Gateways).
#   A4 adds a REVISION_1 clone beside it; A5 deletes the old one; B3 upgrades the clone in place.
# - Service istiod (selector; revision label of its ready endpoints' pods): the 1.6 seed's (selector
#   app=istiod, istio=pilot; pods istio.io/rev=default) until A5 "apply asm/istio/istiod-service.yaml"
#   (anthos-service-mesh-packages asm/istio/istiod-service.yaml: selector app: istiod, istio.io/rev: REV);
#   B4 the same with REVISION_2.
# - Default tag and the old webhooks ("What the guide leaves out"): before A5's deletions the old
#   `istio-sidecar-injector` webhooks are emptied and `istioctl tag set default --revision REV1
#   --overwrite`; before B4's with REV2. Istio on GKE 1.6 has no revision tag at baseline.
# - Objects: A1 istiod-REV1 and Secret cacerts (the four files); A5 deletes the old gateway Deployment
#   and istiod Deployment (the Service istiod stays, re-pointed); B1 istiod-REV2; B4 deletes istiod-REV1
#   and its injector webhook; Phase C 2 deletes cacerts and istio-ca-secret after their backups.
# ---------------------------------------------------------------------------------------------
OLD = ("enabled", None)
R1 = (None, "asm-11910-9-distribute-root")
R2 = (None, "asm-11910-9-meshca-ca-migration")
SVC_OLD = ({"app": "istiod", "istio": "pilot"}, "default")
SVC_R1 = ({"app": "istiod", "istio.io/rev": "asm-11910-9-distribute-root"}, "asm-11910-9-distribute-root")
SVC_R2 = ({"app": "istiod", "istio.io/rev": "asm-11910-9-meshca-ca-migration"}, "asm-11910-9-meshca-ca-migration")

ROUTE = {
    "baseline": {
        "namespaces": {"frontend": OLD, "cart": OLD, "checkout": OLD},
        "pods": {"frontend": "default", "cart": "default", "checkout": "default"},
        "gateway": ["unknown"],
        "istiod": SVC_OLD,
        "objects": {
            ("deployment", "istiod"): True, ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
            ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): False,
            ("mutatingwebhookconfiguration", "istio-revision-tag-default"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): False,
        },
    },
    "distribute-root": {
        "namespaces": {"frontend": R1, "cart": R1, "checkout": R1},
        "pods": {"frontend": "asm-11910-9-distribute-root", "cart": "asm-11910-9-distribute-root", "checkout": "asm-11910-9-distribute-root"},
        "gateway": ["asm-11910-9-distribute-root", "unknown"],
        "istiod": SVC_OLD,
        "objects": {
            ("deployment", "istiod"): True, ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
            ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
            ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        },
    },
    "distribute-root-done": {
        "namespaces": {"frontend": R1, "cart": R1, "checkout": R1},
        "pods": {"frontend": "asm-11910-9-distribute-root", "cart": "asm-11910-9-distribute-root", "checkout": "asm-11910-9-distribute-root"},
        "gateway": ["asm-11910-9-distribute-root"],
        "istiod": SVC_R1,
        "tag": "asm-11910-9-distribute-root",
        "emptied": ["istio-sidecar-injector"],
        "probes": {"frontend": "asm-11910-9-distribute-root"},
        "objects": {
            ("deployment", "istiod"): False, ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
            ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        },
    },
    "mesh-ca": {
        "namespaces": {"frontend": R2, "cart": R2, "checkout": R2},
        "pods": {"frontend": "asm-11910-9-meshca-ca-migration", "cart": "asm-11910-9-meshca-ca-migration",
                 "checkout": "asm-11910-9-meshca-ca-migration"},
        "gateway": ["asm-11910-9-meshca-ca-migration"],
        "istiod": SVC_R1,
        "tag": "asm-11910-9-distribute-root",
        "objects": {
            ("deployment", "istiod"): False, ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
            ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
            ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
        },
    },
    "mesh-ca-done": {
        "namespaces": {"frontend": R2, "cart": R2, "checkout": R2},
        "pods": {"frontend": "asm-11910-9-meshca-ca-migration", "cart": "asm-11910-9-meshca-ca-migration",
                 "checkout": "asm-11910-9-meshca-ca-migration"},
        "gateway": ["asm-11910-9-meshca-ca-migration"],
        "istiod": SVC_R2,
        "tag": "asm-11910-9-meshca-ca-migration",
        "probes": {"cart": "asm-11910-9-meshca-ca-migration"},
        "objects": {
            ("deployment", "istiod"): False, ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("secret", "istio-ca-secret"): True, ("secret", "cacerts"): True,
            ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): False,
            ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
        },
    },
    "old-root-removed": {
        "namespaces": {"frontend": R2, "cart": R2, "checkout": R2},
        "pods": {"frontend": "asm-11910-9-meshca-ca-migration", "cart": "asm-11910-9-meshca-ca-migration",
                 "checkout": "asm-11910-9-meshca-ca-migration"},
        "gateway": ["asm-11910-9-meshca-ca-migration"],
        "istiod": SVC_R2,
        "tag": "asm-11910-9-meshca-ca-migration",
        "objects": {
            ("deployment", "istiod"): False, ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("secret", "istio-ca-secret"): False, ("secret", "cacerts"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
            ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
        },
    },
}
# Each position as a stack file says it (procedure.md "The route"; one batch per phase): the phase and
# the revision of every namespace. Dev's file is written with it; staging's must read it after promotion.
MOVES = {
    "baseline": ("baseline", "default"),
    "distribute-root": ("distribute-root", "asm-11910-9-distribute-root"),
    "distribute-root-done": ("distribute-root-done", "asm-11910-9-distribute-root"),
    "mesh-ca": ("mesh-ca", "asm-11910-9-meshca-ca-migration"),
    "mesh-ca-done": ("mesh-ca-done", "asm-11910-9-meshca-ca-migration"),
    "old-root-removed": ("old-root-removed", "asm-11910-9-meshca-ca-migration"),
}


def seed(route: dict, inj: dict) -> tuple[list[dict], list[dict]]:
    """The smoke's Istio on GKE 1.6 seed, with only the namespaces both stacks keep (a labelled namespace
    outside meshca:namespaces is refused before A5, MCA0341)."""
    objs = smoke.seed_objects(route["dir"], inj["url"], inj["caBundle"])
    dropped = set(smoke.APP_NAMESPACES) - set(NAMESPACES)
    objs = [o for o in objs if o["metadata"].get("namespace") not in dropped
            and not (o["kind"] == "Namespace" and o["metadata"]["name"] in dropped)]
    apps = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["namespace"] in NAMESPACES]
    return [o for o in objs if o not in apps], apps


@pytest.fixture(scope="module")
def route(toolchain):
    with kit.start_route(toolchain, ALL, "staging") as route:
        yield route


def operational(route: dict) -> dict:
    return dict(kubeconfig=route["kubeconfig"], asmcliPath="./standins/asmcli", istioctlPath="./standins/istioctl",
                gateSource="istioctl", gateTimeoutSeconds=60, gatePollSeconds=2, restartTimeoutSeconds=120,
                meshcaRoot=route["meshca_root"])


def staging_file(route: dict) -> tuple[str, dict]:
    cfg = kit.stack_config(route, "staging")
    revs = {ns: (v["revision"] if isinstance(v, dict) else v) for ns, v in cfg["meshca:namespaces"].items()}
    return cfg["meshca:phase"], revs


def test_baseline(route):
    inj = kit.start_injector(route, "testinfra.istio16_injector", "istio16-injector")
    base, apps = seed(route, inj)
    for ctx in ALL:
        kit.apply(route, ctx, "seed Istio CRDs", [kit.AUTHZ_CRD])
        kit.run(route, f"wait for the CRD ({ctx})", ["kubectl", "--context", ctx, "wait", "--for=condition=Established",
                                                      "crd/authorizationpolicies.security.istio.io", "--timeout=30s"], timeout=60)
        kit.apply(route, ctx, "seed Istio on GKE 1.6", base)
    for ctx in ALL:
        kit.wait_injecting(route["env"], ctx, "frontend", "default")
        kit.apply(route, ctx, "seed apps", apps)
    for ctx in ALL:
        kit.rollouts(route, ctx, [("istio-system", "istiod"), ("istio-system", "istio-ingressgateway")] + [(ns, ns) for ns in NAMESPACES])
    kit.check_position(route, ALL, "baseline (seeded)", ROUTE["baseline"])

    kit.edit_stack(route, "dev", keep_namespaces=NAMESPACES, batchSize=3, **operational(route))
    kit.edit_stack(route, "dev", phase="baseline", namespaces={ns: "default" for ns in NAMESPACES})
    kit.edit_stack(route, "staging", keep_namespaces=NAMESPACES, batches=[list(NAMESPACES)], **operational(route))
    assert staging_file(route) == ("baseline", {"frontend": "default", "cart": "default", "checkout": "default"})
    for stack in ("dev", "staging"):
        kit.pulumi(route, stack, "pulumi stack init", "stack", "init")
    kit.preview_and_up(route, "dev", "baseline")
    kit.preview_and_up(route, "staging", "baseline")
    kit.check_position(route, ALL, "baseline", ROUTE["baseline"])


def test_running_ahead_of_upstream_registers_nothing(route):
    # dev is at baseline; staging at distribute-root (a move it may make on its own: the next phase,
    # its batch) would run ahead of dev: "upstream ... this stack may not run ahead of it".
    kit.edit_stack(route, "staging", phase="distribute-root", namespaces={ns: "asm-11910-9-distribute-root" for ns in NAMESPACES})
    try:
        kit.refused(route, "staging", STAGING, "staging ahead of dev", "MCA0721")
    finally:
        kit.edit_stack(route, "staging", phase="baseline", namespaces={ns: "default" for ns in NAMESPACES})
    kit.check_position(route, ALL, "baseline", ROUTE["baseline"])


@pytest.mark.parametrize("upstream,code", [("acme/meshca/dev", "MCA0719"), ("dev", "MCA0159")])
def test_upstream_stack_name_refused(route, upstream, code):
    kit.edit_stack(route, "staging", upstreamStack=upstream)
    try:
        kit.refused(route, "staging", STAGING, f"upstreamStack {upstream}", code)
    finally:
        kit.edit_stack(route, "staging", upstreamStack="organization/meshca/dev")
    kit.check_position(route, ALL, "baseline", ROUTE["baseline"])


@pytest.mark.parametrize("position", ["distribute-root", "distribute-root-done", "mesh-ca", "mesh-ca-done", "old-root-removed"])
def test_position(route, position):
    phase, rev = MOVES[position]
    before = {}
    if position == "old-root-removed":
        before = {ctx: {s: kit.secret_data(route["env"], ctx, s) for s in ("cacerts", "istio-ca-secret")} for ctx in ALL}
        for ctx in ALL:
            assert all(before[ctx].values()), f"{ctx}: a CA secret is already gone before phase C: {sorted(k for k, v in before[ctx].items() if not v)}"
    # dev first
    kit.edit_stack(route, "dev", phase=phase, namespaces={ns: rev for ns in NAMESPACES})
    kit.preview_and_up(route, "dev", position)
    kit.check_position(route, [DEV_CONTEXT], position, ROUTE[position])
    # its evidence, from the real CLI, promoted into staging's file
    outputs, text = kit.stack_outputs(route, "dev")
    assert (outputs.get("stack"), outputs.get("phase"), outputs.get("rollback")) == ("dev", phase, False), \
        f"dev's outputs: stack {outputs.get('stack')}, phase {outputs.get('phase')}, rollback {outputs.get('rollback')}"
    evidence = route["root"] / f"dev-evidence-{position}.json"
    evidence.write_text(text)
    kit.run(route, f"meshca promote dev -> staging ({position})",
            [str(route["dir"] / ".venv" / "bin" / "meshca"), "promote", "--from", "dev", "--to", "staging", "--evidence", str(evidence)])
    assert staging_file(route) == (phase, {ns: rev for ns in NAMESPACES}), f"Pulumi.staging.yaml after the promotion: {staging_file(route)}"
    # staging
    kit.preview_and_up(route, "staging", position)
    kit.check_position(route, STAGING, position, ROUTE[position])
    if position == "old-root-removed":
        problems = [p for ctx, stack in ((DEV_CONTEXT, "dev"), (EAST, "staging"), (WEST, "staging"))
                    for p in kit.check_backups(route, stack, CLUSTER_NAMES[ctx], ctx, before[ctx])]
        assert not problems, "phase C backups:\n  " + "\n  ".join(problems)


def test_zz_timings(route):
    """Not a check: the per-position wall times (preview, up) and every command's."""
    kit.print_timings(route, "staging route")
    (route["root"] / "positions.json").write_text(json.dumps(route["positions"]))
