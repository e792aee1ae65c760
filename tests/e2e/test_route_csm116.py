"""The csm116 stack's whole route (use case ``upgrade``: CSM 1.16 with Istio CA, two clusters) under the
REAL Pulumi CLI against REAL kube-apiservers (issue 11), one batch per phase.

Set-up as the smoke and the dev route (tests/e2e/route_kit.py): its own two clusters (the contexts of
Pulumi.csm116.yaml, one kubeconfig), its own project copy and file backend, one invocation log. The
clusters are seeded as CSM 1.16 with plugged-in ``cacerts`` looks before the move (sources below); its
pods are injected by a 1.16 injector (testinfra/istio116_injector.py), so a pod's revision is read as
1.16 writes it (``sidecar.istio.io/status`` ``.revision``). Pulumi.csm116.yaml is used as shipped,
except: every cluster's kubeconfig is the test's; asmcli is the stand-in (``./standins/asmcli``); gates
read proxies through istioctl (the stand-in: no pilot-agent runs here) with short timeouts;
``meshca:istioctlPath`` is the istioctl stand-in (the asmcli stand-in links no istioctl into its
output dir); ``meshca:meshcaRoot`` is the stand-ins' test Mesh CA root (standins/README.md "Consequence for meshca's
gates"); ``meshca:batchSize`` 5, so each phase is one batch of all five namespaces.

At each of the six positions, ``pulumi preview --policy-pack policy`` then ``pulumi up --yes
--policy-pack policy``; after each up both clusters are compared with the row of ``ROUTE`` (literal,
transcribed from ../shared/docs/procedure.md; never computed with meshca code). Before phase C the CA
Secrets' live data is read; after it, each was deleted only with a 0600 backup that reads back as it.
"""

from __future__ import annotations

import json

import pytest

import route_kit as kit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

STACK = "csm116"
DATA1 = "gke_acme-mesh-data_us-central1_data-1"      # Pulumi.csm116.yaml meshca:clusters[0]
DATA2 = "gke_acme-mesh-data_us-central1-b_data-2"    # meshca:clusters[1]
CONTEXTS = [DATA1, DATA2]
CLUSTER_NAMES = {DATA1: "data-1", DATA2: "data-2"}
NAMESPACES = ("ingest", "etl", "warehouse", "reporting", "ml-serving")  # Pulumi.csm116.yaml meshca:namespaces

# ---------------------------------------------------------------------------------------------
# The expected live clusters, transcribed from procedure.md (both clusters alike: "every cluster
# moves through every phase"). Names: OLD_REVISION asm-1169-3 (Pulumi.csm116.yaml meshca:oldRevision),
# REVISION_1 asm-11910-9-distribute-root, REVISION_2 asm-11910-9-meshca-ca-migration.
# - "Two starting points", upgrade: old istiod `istiod-OLD_REVISION`; old gateway Deployments labelled
#   app=istio-ingressgateway,istio.io/rev=OLD_REVISION; namespace label istio.io/rev=OLD_REVISION.
# - Namespace rows (istio-injection, istio.io/rev). A2: `kubectl label namespace NS
#   istio.io/rev=REVISION_1 istio-injection- --overwrite`; B2: `... istio.io/rev=REVISION_2 --overwrite`.
#   ml-serving keeps its own label team=ml (Pulumi.csm116.yaml: `labels: {team: ml}`) throughout.
# - Pod rows: the revision whose injector wrote the namespace's pod ("Which revision a pod runs": 1.16
#   annotation sidecar.istio.io/status .revision; 1.19 annotation istio.io/rev); A2/B2 restart re-injects.
# - Gateway: the revisions that injected the ready pods behind Service istio-ingressgateway. A4 "install
#   a new gateway Deployment with revision REVISION_1 in the SAME namespace ... selected by the same
#   Service ... Keep the old gateway"; A5 deletes the old one; B3 "Upgrade the gateway ... in place to
#   REVISION_2"; C3 restarts istio-system (the gateway stays on REVISION_2).
# - Service istiod (selector; revision of its ready endpoints): at baseline the 1.16 install's (asmcli's
#   asm/istio/istiod-service.yaml, anthos-service-mesh-packages 1.16.7-asm.22+config1: selector app:
#   istiod, istio.io/rev: ASM_REV); A5 "apply asm/istio/istiod-service.yaml from the new revision's
#   output dir"; B4 "apply istiod-service.yaml of REVISION_2".
# - Default tag ("What the guide leaves out": in upgrade `istio-revision-tag-default` points at the old
#   revision; `istioctl tag set default --revision REV --overwrite` before A5 with REV1, before B4 with REV2).
# - Objects: A1/B1 install istiod-REV (Deployment, Service, injector webhook istio-sidecar-injector-REV);
#   A5 deletes the old gateway Deployment, istiod-OLD (Service, Deployment, HPA, PDB), IstioOperator
#   installed-state-OLD and (the old revision's webhooks go with it) istio-sidecar-injector-OLD and
#   istio-validator-OLD-istio-system; B4 the same for REVISION_1; Phase C 2 deletes cacerts and
#   istio-ca-secret (--ignore-not-found: a plugged-in-certs mesh has no istio-ca-secret, ca.go uses cacerts).
# ---------------------------------------------------------------------------------------------
OLD = (None, "asm-1169-3")
R1 = (None, "asm-11910-9-distribute-root")
R2 = (None, "asm-11910-9-meshca-ca-migration")
SVC_OLD = ({"app": "istiod", "istio.io/rev": "asm-1169-3"}, "asm-1169-3")
SVC_R1 = ({"app": "istiod", "istio.io/rev": "asm-11910-9-distribute-root"}, "asm-11910-9-distribute-root")
SVC_R2 = ({"app": "istiod", "istio.io/rev": "asm-11910-9-meshca-ca-migration"}, "asm-11910-9-meshca-ca-migration")
ML = {"ml-serving": {"team": "ml"}}

ROUTE = {
    "baseline": {
        "namespaces": {"ingest": OLD, "etl": OLD, "warehouse": OLD, "reporting": OLD, "ml-serving": OLD},
        "labels": ML,
        "pods": {"ingest": "asm-1169-3", "etl": "asm-1169-3", "warehouse": "asm-1169-3", "reporting": "asm-1169-3",
                 "ml-serving": "asm-1169-3"},
        "gateway": ["asm-1169-3"],
        "istiod": SVC_OLD,
        "tag": "asm-1169-3",
        "objects": {
            ("deployment", "istiod-asm-1169-3"): True, ("service", "istiod-asm-1169-3"): True,
            ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
            ("istiooperator", "installed-state-asm-1169-3"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-1169-3"): True,
            ("validatingwebhookconfiguration", "istio-validator-asm-1169-3-istio-system"): True,
            ("secret", "cacerts"): True, ("secret", "istio-ca-secret"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): False,
        },
    },
    "distribute-root": {
        "namespaces": {"ingest": R1, "etl": R1, "warehouse": R1, "reporting": R1, "ml-serving": R1},
        "labels": ML,
        "pods": {"ingest": "asm-11910-9-distribute-root", "etl": "asm-11910-9-distribute-root",
                 "warehouse": "asm-11910-9-distribute-root", "reporting": "asm-11910-9-distribute-root",
                 "ml-serving": "asm-11910-9-distribute-root"},
        "gateway": ["asm-1169-3", "asm-11910-9-distribute-root"],
        "istiod": SVC_OLD,
        "tag": "asm-1169-3",
        "objects": {
            ("deployment", "istiod-asm-1169-3"): True, ("service", "istiod-asm-1169-3"): True,
            ("deployment", "istio-ingressgateway"): True, ("service", "istio-ingressgateway"): True,
            ("istiooperator", "installed-state-asm-1169-3"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-1169-3"): True,
            ("validatingwebhookconfiguration", "istio-validator-asm-1169-3-istio-system"): True,
            ("secret", "cacerts"): True, ("secret", "istio-ca-secret"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        },
    },
    "distribute-root-done": {
        "namespaces": {"ingest": R1, "etl": R1, "warehouse": R1, "reporting": R1, "ml-serving": R1},
        "labels": ML,
        "pods": {"ingest": "asm-11910-9-distribute-root", "etl": "asm-11910-9-distribute-root",
                 "warehouse": "asm-11910-9-distribute-root", "reporting": "asm-11910-9-distribute-root",
                 "ml-serving": "asm-11910-9-distribute-root"},
        "gateway": ["asm-11910-9-distribute-root"],
        "istiod": SVC_R1,
        "tag": "asm-11910-9-distribute-root",
        "probes": {"ingest": "asm-11910-9-distribute-root"},
        "objects": {
            ("deployment", "istiod-asm-1169-3"): False, ("service", "istiod-asm-1169-3"): False,
            ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("istiooperator", "installed-state-asm-1169-3"): False,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-1169-3"): False,
            ("validatingwebhookconfiguration", "istio-validator-asm-1169-3-istio-system"): False,
            ("secret", "cacerts"): True, ("secret", "istio-ca-secret"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
        },
    },
    "mesh-ca": {
        "namespaces": {"ingest": R2, "etl": R2, "warehouse": R2, "reporting": R2, "ml-serving": R2},
        "labels": ML,
        "pods": {"ingest": "asm-11910-9-meshca-ca-migration", "etl": "asm-11910-9-meshca-ca-migration",
                 "warehouse": "asm-11910-9-meshca-ca-migration", "reporting": "asm-11910-9-meshca-ca-migration",
                 "ml-serving": "asm-11910-9-meshca-ca-migration"},
        "gateway": ["asm-11910-9-meshca-ca-migration"],
        "istiod": SVC_R1,
        "tag": "asm-11910-9-distribute-root",
        "objects": {
            ("deployment", "istiod-asm-1169-3"): False, ("service", "istiod-asm-1169-3"): False,
            ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("secret", "cacerts"): True, ("secret", "istio-ca-secret"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): True, ("service", "istiod-asm-11910-9-distribute-root"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): True,
            ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
        },
    },
    "mesh-ca-done": {
        "namespaces": {"ingest": R2, "etl": R2, "warehouse": R2, "reporting": R2, "ml-serving": R2},
        "labels": ML,
        "pods": {"ingest": "asm-11910-9-meshca-ca-migration", "etl": "asm-11910-9-meshca-ca-migration",
                 "warehouse": "asm-11910-9-meshca-ca-migration", "reporting": "asm-11910-9-meshca-ca-migration",
                 "ml-serving": "asm-11910-9-meshca-ca-migration"},
        "gateway": ["asm-11910-9-meshca-ca-migration"],
        "istiod": SVC_R2,
        "tag": "asm-11910-9-meshca-ca-migration",
        "probes": {"etl": "asm-11910-9-meshca-ca-migration"},
        "objects": {
            ("deployment", "istiod-asm-1169-3"): False, ("service", "istiod-asm-1169-3"): False,
            ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("secret", "cacerts"): True, ("secret", "istio-ca-secret"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
            ("istiooperator", "installed-state-asm-11910-9-distribute-root"): False,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-distribute-root"): False,
            ("validatingwebhookconfiguration", "istio-validator-asm-11910-9-distribute-root-istio-system"): False,
            ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
        },
    },
    "old-root-removed": {
        "namespaces": {"ingest": R2, "etl": R2, "warehouse": R2, "reporting": R2, "ml-serving": R2},
        "labels": ML,
        "pods": {"ingest": "asm-11910-9-meshca-ca-migration", "etl": "asm-11910-9-meshca-ca-migration",
                 "warehouse": "asm-11910-9-meshca-ca-migration", "reporting": "asm-11910-9-meshca-ca-migration",
                 "ml-serving": "asm-11910-9-meshca-ca-migration"},
        "gateway": ["asm-11910-9-meshca-ca-migration"],
        "istiod": SVC_R2,
        "tag": "asm-11910-9-meshca-ca-migration",
        "objects": {
            ("deployment", "istiod-asm-1169-3"): False, ("service", "istiod-asm-1169-3"): False,
            ("deployment", "istio-ingressgateway"): False, ("service", "istio-ingressgateway"): True,
            ("secret", "cacerts"): False, ("secret", "istio-ca-secret"): False,
            ("deployment", "istiod-asm-11910-9-distribute-root"): False, ("service", "istiod-asm-11910-9-distribute-root"): False,
            ("deployment", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("service", "istiod-asm-11910-9-meshca-ca-migration"): True,
            ("mutatingwebhookconfiguration", "istio-sidecar-injector-asm-11910-9-meshca-ca-migration"): True,
        },
    },
}
# The stack file per position: phase and the revision of every namespace (one batch per phase).
MOVES = {
    "baseline": ("baseline", "asm-1169-3"),
    "distribute-root": ("distribute-root", "asm-11910-9-distribute-root"),
    "distribute-root-done": ("distribute-root-done", "asm-11910-9-distribute-root"),
    "mesh-ca": ("mesh-ca", "asm-11910-9-meshca-ca-migration"),
    "mesh-ca-done": ("mesh-ca-done", "asm-11910-9-meshca-ca-migration"),
    "old-root-removed": ("old-root-removed", "asm-11910-9-meshca-ca-migration"),
}


# ---------------------------------------------------------------------------------------------
# Seed: CSM 1.16 (revision asm-1169-3) with Istio CA and plugged-in certs. Sources:
# - istiod-asm-1169-3 (Deployment, Service): istio/istio 1.16.7 manifests/charts/istio-control/istio-discovery/
#   templates/deployment.yaml (name istiod-REV; labels app=istiod, istio.io/rev=REV, istio=pilot) and
#   service.yaml (ports 15010, 15012, 443->15017, 15014; selector app=istiod, istio.io/rev=REV).
# - Service istiod: anthos-service-mesh-packages 1.16.7-asm.22+config1 asm/istio/istiod-service.yaml.
# - injector webhook: templates/mutatingwebhook.yaml:37-90 (istio-sidecar-injector-REV, webhooks
#   rev.namespace.sidecar-injector.istio.io: namespace istio.io/rev In [REV], istio-injection DoesNotExist;
#   rev.object.sidecar-injector.istio.io: namespace without both labels, pod istio.io/rev In [REV]), at
#   the 1.16 injector's loopback URL; validator templates/validatingwebhookconfiguration.yaml
#   (istio-validator-REV-istio-system); default tag templates/revision-tags.yaml (istio-revision-tag-default,
#   labels istio.io/tag=default, istio.io/rev=REV; namespace istio-injection=enabled).
# - IstioOperator installed-state-REV: operator/cmd/mesh/install.go (saved by istioctl install).
# - cacerts: procedure.md "Facts" (keys ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem): the
#   plugged-in CA the stack's caFiles name (samples/certs); with it istiod keeps no istio-ca-secret.
# - gateway: procedure.md "Two starting points" (labels app=istio-ingressgateway, istio.io/rev=REV) in
#   1.16's injected-gateway form (samples/gateways: annotation inject.istio.io/templates: gateway, label
#   sidecar.istio.io/inject: "true", container istio-proxy with image: auto).
# ---------------------------------------------------------------------------------------------
OLD_REV = "asm-1169-3"
AUTHZ_CRD = kit.AUTHZ_CRD
IOP_CRD = {  # the base chart's istiooperators.install.istio.io (open schema)
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "istiooperators.install.istio.io", "labels": {"release": "istio"}},
    "spec": {"group": "install.istio.io", "scope": "Namespaced",
             "names": {"kind": "IstioOperator", "listKind": "IstioOperatorList", "plural": "istiooperators",
                       "singular": "istiooperator", "shortNames": ["iop", "io"]},
             "versions": [{"name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def seed_control_plane(route: dict, inj: dict) -> list[dict]:
    certs = route["dir"] / "samples" / "certs"
    url, ca = inj["url"], inj["caBundle"]
    rev = OLD_REV
    labels = {"app": "istiod", "istio": "pilot", "istio.io/rev": rev, "release": "istio"}
    ports = [{"name": "grpc-xds", "port": 15010, "protocol": "TCP"}, {"name": "https-dns", "port": 15012, "protocol": "TCP"},
             {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
             {"name": "http-monitoring", "port": 15014, "protocol": "TCP"}]
    gw = {"app": "istio-ingressgateway", "istio": "ingressgateway"}

    def hook(name: str, ns_sel: dict, obj_sel: dict | None = None) -> dict:
        h = {"name": name, "clientConfig": {"url": url + "/inject", "caBundle": ca}, "sideEffects": "None",
             "admissionReviewVersions": ["v1beta1", "v1"], "failurePolicy": "Fail", "reinvocationPolicy": "Never",
             "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
             "namespaceSelector": ns_sel}
        if obj_sel:
            h["objectSelector"] = obj_sel
        return h

    no_inject = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}
    validator = {"name": "rev.validation.istio.io", "clientConfig": {"url": url + "/validate", "caBundle": ca},
                 "sideEffects": "None", "admissionReviewVersions": ["v1beta1", "v1"], "failurePolicy": "Ignore",
                 "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["security.istio.io", "networking.istio.io"],
                            "apiVersions": ["*"], "resources": ["*"]}],
                 "objectSelector": {"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [rev]}]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "cacerts", "namespace": "istio-system"},
         "data": {k: kit.b64(certs / k) for k in ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"istiod-{rev}", "namespace": "istio-system"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"istiod-{rev}", "namespace": "istio-system", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": rev}},
                  "template": {"metadata": {"labels": {"app": "istiod", "istio.io/rev": rev, "istio": "pilot"},
                                            "annotations": {"sidecar.istio.io/inject": "false"}},
                               "spec": {"serviceAccountName": f"istiod-{rev}",
                                        "containers": [{"name": "discovery", "image": "gcr.io/gke-release/asm/pilot:1.16.7-asm.3",
                                                        "args": ["discovery", "--monitoringAddr=:15014"]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"istiod-{rev}", "namespace": "istio-system", "labels": labels},
         "spec": {"selector": {"app": "istiod", "istio.io/rev": rev}, "ports": ports}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istiod", "namespace": "istio-system", "labels": labels},
         "spec": {"selector": {"app": "istiod", "istio.io/rev": rev}, "ports": ports}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": f"istio-sidecar-injector-{rev}", "labels": {"istio.io/rev": rev, "app": "sidecar-injector", "release": "istio"}},
         "webhooks": [
             hook("rev.namespace.sidecar-injector.istio.io",
                  {"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": [rev]},
                                        {"key": "istio-injection", "operator": "DoesNotExist"}]},
                  {"matchExpressions": [no_inject]}),
             hook("rev.object.sidecar-injector.istio.io",
                  {"matchExpressions": [{"key": "istio.io/rev", "operator": "DoesNotExist"},
                                        {"key": "istio-injection", "operator": "DoesNotExist"}]},
                  {"matchExpressions": [no_inject, {"key": "istio.io/rev", "operator": "In", "values": [rev]}]}),
         ]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": "istio-revision-tag-default",
                      "labels": {"istio.io/tag": "default", "istio.io/rev": rev, "app": "sidecar-injector", "release": "istio"}},
         "webhooks": [hook("namespace.sidecar-injector.istio.io", {"matchExpressions": [{"key": "istio-injection", "operator": "In",
                                                                                         "values": ["enabled"]}]},
                           {"matchExpressions": [no_inject]})]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": f"istio-validator-{rev}-istio-system", "labels": {"istio.io/rev": rev, "app": "istiod", "istio": "istiod"}},
         "webhooks": [validator]},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": {**gw, "istio.io/rev": rev}},
         "spec": {"replicas": 1, "selector": {"matchLabels": gw},
                  "template": {"metadata": {"labels": {**gw, "istio.io/rev": rev, "sidecar.istio.io/inject": "true"},
                                            "annotations": {"inject.istio.io/templates": "gateway"}},
                               "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": gw},
         "spec": {"type": "LoadBalancer", "selector": gw,
                  "ports": [{"name": "status-port", "port": 15021}, {"name": "http2", "port": 80, "targetPort": 8080},
                            {"name": "https", "port": 443, "targetPort": 8443}]}},
    ]


def seed_apps() -> list[dict]:
    objs = []
    for ns in NAMESPACES:
        labels = {"istio.io/rev": OLD_REV, **({"team": "ml"} if ns == "ml-serving" else {})}
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    for ns in NAMESPACES:
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": ns, "namespace": ns, "labels": {"app": ns}},
                     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": ns}},
                              "template": {"metadata": {"labels": {"app": ns, "version": "v1"}},
                                           "spec": {"containers": [{"name": ns, "image": f"example.invalid/acme/{ns}:1.0",
                                                                    "ports": [{"containerPort": 8080, "name": "http"}]}]}}}})
    return objs


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def route(toolchain):
    with kit.start_route(toolchain, CONTEXTS, "csm116") as route:
        yield route


def write_position(route: dict, position: str) -> None:
    phase, rev = MOVES[position]
    kit.edit_stack(route, STACK, phase=phase, namespaces={ns: rev for ns in NAMESPACES})


def test_baseline(route):
    inj = kit.start_injector(route, "testinfra.istio116_injector", "istio116-injector", "--revision", OLD_REV)
    for ctx in CONTEXTS:
        kit.apply(route, ctx, "seed CRDs", [AUTHZ_CRD, IOP_CRD])
        kit.run(route, f"wait for the CRDs ({ctx})", ["kubectl", "--context", ctx, "wait", "--for=condition=Established",
                                                       "crd/authorizationpolicies.security.istio.io",
                                                       "crd/istiooperators.install.istio.io", "--timeout=30s"], timeout=60)
        kit.apply(route, ctx, "seed CSM 1.16 control plane", seed_control_plane(route, inj))
        kit.apply(route, ctx, "seed installed-state", [{"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
                                                         "metadata": {"name": f"installed-state-{OLD_REV}", "namespace": "istio-system"},
                                                         "spec": {"profile": "asm-gcp", "revision": OLD_REV}}])
        kit.apply(route, ctx, "seed apps", seed_apps())
    for ctx in CONTEXTS:
        kit.rollouts(route, ctx, [("istio-system", f"istiod-{OLD_REV}"), ("istio-system", "istio-ingressgateway")]
                     + [(ns, ns) for ns in NAMESPACES])
    kit.check_position(route, CONTEXTS, "baseline (seeded)", ROUTE["baseline"])

    kit.edit_stack(route, STACK, kubeconfig=route["kubeconfig"], asmcliPath="./standins/asmcli", gateSource="istioctl",
                   gateTimeoutSeconds=60, gatePollSeconds=2, restartTimeoutSeconds=120, meshcaRoot=route["meshca_root"], batchSize=5,
                   istioctlPath="./standins/istioctl")
    write_position(route, "baseline")
    kit.pulumi(route, STACK, "pulumi stack init", "stack", "init")
    kit.preview_and_up(route, STACK, "baseline")
    kit.check_position(route, CONTEXTS, "baseline", ROUTE["baseline"])


@pytest.mark.parametrize("position", ["distribute-root", "distribute-root-done", "mesh-ca", "mesh-ca-done"])
def test_position(route, position):
    write_position(route, position)
    kit.preview_and_up(route, STACK, position)
    kit.check_position(route, CONTEXTS, position, ROUTE[position])


def test_old_root_removed(route):
    before = {ctx: {s: kit.secret_data(route["env"], ctx, s) for s in ("cacerts", "istio-ca-secret")} for ctx in CONTEXTS}
    # The plugged-in CA is what the backup must hold (procedure.md Phase C 1).
    for ctx in CONTEXTS:
        assert before[ctx]["cacerts"] is not None and sorted(before[ctx]["cacerts"]) == \
            ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"], f"{ctx}: cacerts before phase C: {before[ctx]['cacerts']}"
    write_position(route, "old-root-removed")
    kit.preview_and_up(route, STACK, "old-root-removed")
    kit.check_position(route, CONTEXTS, "old-root-removed", ROUTE["old-root-removed"])
    problems = [p for ctx in CONTEXTS for p in kit.check_backups(route, STACK, CLUSTER_NAMES[ctx], ctx, before[ctx])]
    assert not problems, "phase C backups:\n  " + "\n  ".join(problems)


def test_zz_timings(route):
    """Not a check: the per-position wall times (preview, up) and every command's."""
    kit.print_timings(route, "csm116 route")
    (route["root"] / "positions.json").write_text(json.dumps(route["positions"]))
