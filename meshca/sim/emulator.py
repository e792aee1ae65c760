"""A small kubectl / asmcli / meshca emulator over the simulated mesh.

The rehearsal drives the simulation only through the argv (and stdin) of the plan's steps,
so a wrong argv breaks the rehearsal exactly where it would break a real run. Commands the
real tool would refuse return a non-zero ``Result`` with the tool's own message; argv the
emulator does not understand raises ``MeshcaError("RehearseUnknownCommand")`` (never ignored).

Emulated (argv shapes of meshca/commands.py, and nearby variants a careful operator types):
- ``kubectl [--kubeconfig K] --context C`` + ``label namespace NS k=v k- [--overwrite]``,
  ``delete KINDS NAME...|KIND/NAME|KIND -l SEL -n NS [--ignore-not-found[=true]]``,
  ``apply -f -`` (stdin) / ``apply -f FILE``, ``get secret/X -n NS -o yaml``,
  ``get configmap X -n NS -o json|yaml``, ``patch configmap X -n NS --type merge -p JSON``,
  ``rollout restart deployment -n NS``;
- ``asmcli --version`` and ``asmcli install ...`` (1.19.10-asm.9: custom-CA validation,
  "Custom certificates already exist", the ingress gateway prompt, options, overlays);
- ``meshca restart ... --namespace NS --revision R``, ``meshca check KIND ...`` (the real
  ``run_check`` over the simulated source; ``root-of-trust`` compares live roots);
- ``meshca overlay citadel-root --root-cert F --output P`` (writes P among the simulated files,
  where ``asmcli --custom_overlay P`` reads it) and ``meshca mesh-config drop-root ... --revision R
  --root-cert F`` (meshca/meshconfig.py's own checks and ``drop_root``, its kubectl calls emulated).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from ..certs import fingerprint, load_certs, short_fingerprint, verify_path
from ..config import DNS1123
from ..errors import MeshcaError
from .mesh import CANONICAL_KEYS, NEVER_MATCH, SYSTEM_NS, Cluster, Istiod, Mesh, SimError, Workload
from .start import base_aliases

ASMCLI_VERSION = "1.19.10-asm.9+config1"
ASMCLI_CAS = ("citadel", "mesh_ca", "gcp_cas", "managed_cas")
# asm/istio/options/*.yaml shipped with 1.19.10-asm.9 (plus asmcli's special names).
ASMCLI_OPTIONS = frozenset(
    {
        "ca-migration-citadel",
        "ca-migration-meshca",
        "citadel-ca",
        "hub-meshca",
        "prometheus",
        "stackdriver",
        "prometheus-and-stackdriver",
        "legacy-default-ingressgateway",
        "iap-operator",
        "cloud-tracing",
        "envoy-access-log",
        "cni-gcp",
        "cni-managed",
        "multicluster",
        "multiproject",
        "vm",
        "attached-cluster",
    }
)
ASMCLI_VALUE_FLAGS = {
    "--fleet_id": "fleet_id", "--fleet-id": "fleet_id",
    "--kubeconfig": "kubeconfig", "--kc": "kubeconfig",
    "--context": "context", "--ctx": "context",
    "--output_dir": "output_dir", "--output-dir": "output_dir", "-D": "output_dir",
    "--ca": "ca", "-c": "ca",
    "--ca_cert": "ca_cert", "--ca-cert": "ca_cert",
    "--ca_key": "ca_key", "--ca-key": "ca_key",
    "--root_cert": "root_cert", "--root-cert": "root_cert",
    "--cert_chain": "cert_chain", "--cert-chain": "cert_chain",
    "--option": "option", "-o": "option",
    "--custom_overlay": "custom_overlay", "--custom-overlay": "custom_overlay",
    "--revision_name": "revision_name", "--revision-name": "revision_name", "-r": "revision_name",
    "--project_id": "project_id", "-p": "project_id",
    "--cluster_name": "cluster_name", "-n": "cluster_name",
    "--cluster_location": "cluster_location", "-l": "cluster_location",
    "--network_id": "network_id", "--platform": "platform", "--channel": "channel",
}
ASMCLI_BOOL_FLAGS = {
    "--enable_all", "--enable-all", "-e", "--verbose", "-v", "--enable_cluster_roles", "--enable_cluster_labels",
    "--enable_gcp_apis", "--enable_gcp_iam_roles", "--enable_gcp_components", "--enable_registration",
    "--enable_namespace_creation", "--disable_canonical_service", "--use_managed_cni",
}
CERT_FLAGS = ("ca_cert", "ca_key", "root_cert", "cert_chain")
KINDS = {
    "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
    "statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
    "daemonset": "DaemonSet", "daemonsets": "DaemonSet", "ds": "DaemonSet",
    "service": "Service", "services": "Service", "svc": "Service",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler", "horizontalpodautoscalers": "HorizontalPodAutoscaler", "hpa": "HorizontalPodAutoscaler",
    "poddisruptionbudget": "PodDisruptionBudget", "poddisruptionbudgets": "PodDisruptionBudget", "pdb": "PodDisruptionBudget",
    "secret": "Secret", "secrets": "Secret",
    "configmap": "ConfigMap", "configmaps": "ConfigMap", "cm": "ConfigMap",
    "istiooperator": "IstioOperator", "istiooperators": "IstioOperator", "iop": "IstioOperator",
    "mutatingwebhookconfiguration": "MutatingWebhookConfiguration", "mutatingwebhookconfigurations": "MutatingWebhookConfiguration",
    "validatingwebhookconfiguration": "ValidatingWebhookConfiguration", "validatingwebhookconfigurations": "ValidatingWebhookConfiguration",
    "namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
    "pod": "Pod", "pods": "Pod", "po": "Pod",
    "endpointslice": "EndpointSlice", "endpointslices": "EndpointSlice",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
CLUSTER_SCOPED = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
ISTIOCTL_VERSION = ASMCLI_VERSION.split("+", 1)[0]  # asmcli/asmcli line 4227: RELEASE, istio-${RELEASE}/bin/istioctl
# security.istio.io AuthorizationPolicy spec.action: the CRD's OpenAPI enum (istio 1.19.10
# manifests/charts/base/crds/crd-all.gen.yaml line 6380), checked by the API server itself.
AUTHZ_ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")


_CA_KEYS: dict[bytes, object] = {}  # the CA key files asmcli was given, loaded once per content


@dataclass
class Result:
    rc: int
    stdout: str = ""
    stderr: str = ""
    not_found: bool = False
    document: dict | None = None  # meshca check --json
    cluster: str | None = None

    @property
    def ok(self) -> bool:
        return self.rc == 0


def fail(message: str, rc: int = 1, not_found: bool = False) -> Result:
    return Result(rc, stderr=message, not_found=not_found)


class _Unknown(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class Emulator:
    """Runs one argv against the mesh. ``check`` runs a ``meshca check`` (set by the engine)."""

    mesh: Mesh
    asmcli_path: str = "./asmcli"
    check: Callable[[list[str]], Result] | None = None
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: tuple[str, ...] | list[str], stdin: str | None = None, subject: str = "step") -> Result:
        argv = tuple(argv)
        self.calls.append(argv)
        try:
            if not argv:
                raise _Unknown("empty argv")
            tool = os.path.basename(argv[0])
            if tool == "kubectl":
                return self._kubectl(list(argv[1:]), stdin)
            if argv[0] == self.asmcli_path or tool == "asmcli":
                return self._asmcli(list(argv[1:]), stdin)
            if tool == "meshca":
                return self._meshca(list(argv[1:]))
            if tool == "istioctl":
                return self._istioctl(argv[0], list(argv[1:]))
            raise _Unknown(f"no emulation for program '{argv[0]}'")
        except _Unknown as exc:
            raise MeshcaError("RehearseUnknownCommand", subject, argv=" ".join(argv)[:300], why=exc.why) from None
        except SimError as exc:
            return fail(str(exc), not_found=exc.not_found)

    # ------------------------------------------------------------------------ kubectl

    def _kubectl(self, args: list[str], stdin: str | None) -> Result:
        opts: dict[str, Any] = {"namespace": None, "selector": None, "filename": None, "output": None, "overwrite": False, "ignore": False, "type": None, "patch": None, "dry_run": None}
        words: list[str] = []
        kubeconfig = context = None
        i = 0
        while i < len(args):
            a = args[i]
            val = None
            if "=" in a and a.startswith("--"):
                a, val = a.split("=", 1)
            takes = {"--kubeconfig", "--context", "-n", "--namespace", "-l", "--selector", "-f", "--filename", "-o", "--output", "--type", "-p", "--patch"}
            if a in takes:
                if val is None:
                    if i + 1 >= len(args):
                        raise _Unknown(f"kubectl flag {a} has no value")
                    val = args[i + 1]
                    i += 1
                if a == "--kubeconfig":
                    kubeconfig = val
                elif a == "--context":
                    context = val
                else:
                    opts[
                        {
                            "-n": "namespace", "--namespace": "namespace", "-l": "selector", "--selector": "selector", "-f": "filename",
                            "--filename": "filename", "-o": "output", "--output": "output", "--type": "type", "-p": "patch", "--patch": "patch",
                        }[a]
                    ] = val
            elif a == "--overwrite":
                opts["overwrite"] = val in (None, "true")
            elif a == "--server-side":
                opts["server_side"] = val in (None, "true")
            elif a == "--field-manager":
                if val is None:
                    if i + 1 >= len(args):
                        raise _Unknown("kubectl flag --field-manager has no value")
                    val = args[i + 1]
                    i += 1
                opts["field_manager"] = val
            elif a == "--dry-run":
                if val not in ("server", "client", "none"):
                    raise _Unknown(f"--dry-run={val}")
                opts["dry_run"] = val
            elif a == "--ignore-not-found":
                if val not in (None, "true", "false"):
                    raise _Unknown(f"--ignore-not-found={val}")
                opts["ignore"] = val in (None, "true")
            elif a.startswith("-") and a != "-":
                raise _Unknown(f"kubectl flag {a} is not emulated")
            else:
                words.append(a if val is None else f"{a}={val}")
            i += 1
        if context is None:
            raise _Unknown("kubectl without --context would act on the kubeconfig's current context")
        cluster = self.mesh.cluster_for(kubeconfig, context)
        if not words:
            raise _Unknown("kubectl without a verb")
        verb, rest = words[0], words[1:]
        handler = {
            "label": self._label,
            "delete": self._delete,
            "apply": self._apply,
            "get": self._get,
            "rollout": self._rollout,
            "patch": self._patch,
            "create": self._create,
        }.get(verb)
        if handler is None:
            raise _Unknown(f"kubectl {verb} is not emulated")
        result = handler(cluster, rest, opts, stdin)
        result.cluster = cluster.name
        return result

    def _label(self, cluster: Cluster, rest: list[str], opts: dict, stdin) -> Result:
        if len(rest) < 3 or KINDS.get(rest[0].lower()) != "Namespace":
            raise _Unknown("kubectl label: expected 'namespace NS k=v|k- ...'")
        ns = cluster.namespace(rest[1])
        labels = dict(ns.labels)
        for change in rest[2:]:
            if change.endswith("-") and "=" not in change:
                labels.pop(change[:-1], None)
            elif "=" in change:
                k, v = change.split("=", 1)
                if k in labels and labels[k] != v and not opts["overwrite"]:
                    return fail(f"error: '{k}' already has a value ({labels[k]}), and --overwrite is false")
                labels[k] = v
            else:
                raise _Unknown(f"kubectl label: '{change}' is neither k=v nor k-")
        if labels == ns.labels:
            return Result(0, f"namespace/{ns.name} not labeled")
        ns.labels = labels
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k in ("istio-injection", "istio.io/rev")) or "no injection label"
        cluster.log(f"namespace {ns.name} labels: {shown}")
        return Result(0, f"namespace/{ns.name} labeled")

    def _targets(self, rest: list[str], opts: dict) -> list[tuple[str, str | None]]:
        """(kind, name) pairs, name None for 'every object of KIND matching -l'."""
        if not rest:
            raise _Unknown("kubectl delete without a resource")
        if "/" in rest[0]:
            out = []
            for r in rest:
                kind, _, name = r.partition("/")
                if kind.lower() not in KINDS or not name:
                    raise _Unknown(f"resource '{r}' is not emulated")
                out.append((KINDS[kind.lower()], name))
            return out
        kinds = []
        for k in rest[0].split(","):
            if k.lower() not in KINDS:
                raise _Unknown(f"resource kind '{k}' is not emulated")
            kinds.append(KINDS[k.lower()])
        names = rest[1:]
        if not names:
            if not opts["selector"]:
                raise _Unknown("kubectl delete KIND needs names or -l")
            return [(k, None) for k in kinds]
        if opts["selector"]:
            raise _Unknown("kubectl delete with both names and -l")
        return [(k, n) for k in kinds for n in names]

    def _delete(self, cluster: Cluster, rest: list[str], opts: dict, stdin) -> Result:
        ns = opts["namespace"] or "default"
        out, missing = [], []
        for kind, name in self._targets(rest, opts):
            if name is None:
                sel = _selector(opts["selector"])
                for w in [w for w in cluster.workloads.values() if w.kind == kind and w.namespace == ns and _matches(w.labels, sel)]:
                    cluster.delete_workload(w.namespace, w.name)
                    out.append(f"{kind.lower()}.apps \"{w.name}\" deleted")
                continue
            if self._delete_one(cluster, kind, ns, name):
                out.append(f"{kind.lower()} \"{name}\" deleted")
            else:
                missing.append(f'Error from server (NotFound): {kind.lower()}s "{name}" not found')
        if missing and not opts["ignore"]:
            return Result(1, "\n".join(out), "\n".join(missing), not_found=True)
        return Result(0, "\n".join(out))

    def _delete_one(self, cluster: Cluster, kind: str, ns: str, name: str) -> bool:
        if kind == "Secret":
            return cluster.delete_secret(name, ns)
        if kind in WORKLOAD_KINDS and (ns, name) in cluster.workloads and cluster.workloads[(ns, name)].kind == kind:
            return cluster.delete_workload(ns, name)
        if kind == "Namespace":
            raise _Unknown("deleting namespaces is not emulated (meshca never does it)")
        key = (kind, "" if kind in CLUSTER_SCOPED else ns, name)
        if key not in cluster.objects:
            return False
        del cluster.objects[key]
        if kind == "Deployment" and ns == SYSTEM_NS:
            istiod = cluster.istiod_by_deployment(name)
            if istiod is not None:
                cluster.remove_istiod(istiod.revision)
        else:
            cluster.log(f"{kind} {ns}/{name} deleted")
        return True

    def _apply(self, cluster: Cluster, rest: list[str], opts: dict, stdin: str | None) -> Result:
        if opts.get("server_side") and opts.get("field_manager") is None:
            raise _Unknown("kubectl apply --server-side without --field-manager (meshca always names itself)")
        if rest or not opts["filename"]:
            raise _Unknown("kubectl apply: expected '-f -' or '-f FILE'")
        if opts["filename"] == "-":
            if stdin is None:
                return fail("error: no objects passed to apply (stdin is empty)")
            text = stdin
        else:
            text = self.mesh.read_file(opts["filename"]).decode()
        try:
            docs = [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as exc:
            return fail(f"error: error parsing {opts['filename']}: {exc}")
        out = []
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
                return fail("error: a document without kind/metadata")
            kind = doc["kind"]
            meta = doc["metadata"]
            ns = meta.get("namespace") or opts["namespace"] or "default"
            name = meta["name"]
            if kind in WORKLOAD_KINDS:
                out.append(self._apply_workload(cluster, doc, ns))
            elif kind in ("Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
                key = (kind, ns, name)
                verb = "configured" if key in cluster.objects else "created"
                cluster.objects[key] = doc
                if kind == "Service":
                    sel = (doc.get("spec") or {}).get("selector") or {}
                    cluster.log(f"Service {ns}/{name} {verb} (selects {', '.join(f'{k}={v}' for k, v in sel.items())})")
                out.append(f"{kind.lower()}/{name} {verb}")
            else:
                raise _Unknown(f"kubectl apply of kind {kind} is not emulated")
        return Result(0, "\n".join(out))

    def _apply_workload(self, cluster: Cluster, doc: dict, ns: str) -> str:
        meta, spec = doc["metadata"], doc.get("spec") or {}
        template = spec.get("template") or {}
        tmeta = template.get("metadata") or {}
        tspec = template.get("spec") or {}
        name = meta["name"]
        cluster.namespace(ns)
        annotations = dict(tmeta.get("annotations") or {})
        existing = cluster.workloads.get((ns, name))
        new = Workload(
            kind=doc["kind"],
            namespace=ns,
            name=name,
            labels=dict(meta.get("labels") or {}),
            template_labels=dict(tmeta.get("labels") or {}),
            template_annotations=annotations,
            service_account=tspec.get("serviceAccountName") or "default",
            replicas=int(spec.get("replicas", 1)),
            gateway=annotations.get("inject.istio.io/templates") == "gateway",
            manifest=doc,
        )
        if existing is None:
            cluster.add_workload(new)
            return f"{doc['kind'].lower()}.apps/{name} created"
        same = (existing.template_labels, existing.template_annotations, existing.service_account, existing.replicas) == (
            new.template_labels, new.template_annotations, new.service_account, new.replicas
        )
        existing.labels, existing.manifest = new.labels, doc
        if same:
            return f"{doc['kind'].lower()}.apps/{name} unchanged"
        existing.template_labels, existing.template_annotations = new.template_labels, new.template_annotations
        existing.service_account, existing.replicas, existing.gateway = new.service_account, new.replicas, new.gateway
        cluster.rollout(existing)  # a new pod template rolls the pods
        return f"{doc['kind'].lower()}.apps/{name} configured"

    def _get(self, cluster: Cluster, rest: list[str], opts: dict, stdin) -> Result:
        kind = KINDS.get(rest[0].lower()) if rest and "/" not in rest[0] else None
        if kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "EndpointSlice", "Pod"):
            return self._get_gateway_view(cluster, kind, rest[1:], opts)
        if len(rest) == 1 and KINDS.get(rest[0].lower()) == "Namespace":
            if opts["output"] != "json":
                raise _Unknown("kubectl get namespaces: only -o json is emulated")
            items = [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n, **ns.labels}}}
                for n, ns in sorted(cluster.namespaces.items())
            ]
            return Result(0, json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        if len(rest) == 2 and "/" not in rest[0]:
            rest = [f"{rest[0]}/{rest[1]}"]  # `get secret NAME` == `get secret/NAME`
        if len(rest) != 1 or "/" not in rest[0]:
            raise _Unknown("kubectl get: only 'get secret|configmap/NAME' or 'get secret|configmap NAME' is emulated")
        kind, _, name = rest[0].partition("/")
        if KINDS.get(kind.lower()) not in ("Secret", "ConfigMap"):
            raise _Unknown(f"kubectl get {kind} is not emulated")
        output = opts["output"] or ""
        if output not in ("yaml", "json") and not output.startswith("jsonpath="):
            raise _Unknown(f"kubectl get -o {output or '(table)'} is not emulated (yaml, json or jsonpath=)")
        ns = opts["namespace"] or "default"
        if KINDS[kind.lower()] == "ConfigMap":
            return self._get_configmap(cluster, ns, name, output, opts)
        data = cluster.secrets.get((ns, name))
        if data is None:
            if opts["ignore"]:
                return Result(0, "")
            return fail(f'Error from server (NotFound): secrets "{name}" not found', not_found=True)
        encoded = {k: base64.b64encode(v).decode() for k, v in sorted(data.items())}
        if output.startswith("jsonpath="):
            return Result(0, _jsonpath(output[len("jsonpath=") :], {"data": encoded, "metadata": {"name": name, "namespace": ns}}))
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "type": "Opaque" if name == "cacerts" else "istio.io/ca-root",
            "data": encoded,
        }
        return Result(0, json.dumps(doc, indent=4) if output == "json" else yaml.safe_dump(doc, sort_keys=False))

    @staticmethod
    def _configmap_doc(cluster: Cluster, ns: str, name: str) -> dict | None:
        obj = cluster.objects.get(("ConfigMap", ns, name))
        if obj is None:
            return None
        return {"apiVersion": "v1", **json.loads(json.dumps(obj))}

    def _get_gateway_view(self, cluster: Cluster, kind: str, names: list[str], opts: dict) -> Result:
        """What ``meshca gateway clone|ready`` reads (issue 9 finding 9), as the API server
        answers ``-o json``: one Deployment or Service by name, or the List of a namespace's
        HPAs, PDBs, pods, or the EndpointSlices of one Service (``-l kubernetes.io/service-name=S``:
        one slice of its selected pods, ``conditions.ready`` for running ones, ``targetRef`` Pod;
        discovery.k8s.io/v1)."""
        from .source import pod_json

        if opts["output"] != "json":
            raise _Unknown(f"kubectl get {kind} -o {opts['output'] or '(table)'} is not emulated (json only)")
        ns = opts["namespace"] or "default"
        if kind in ("Deployment", "Service"):
            if len(names) != 1 or opts["selector"]:
                raise _Unknown(f"kubectl get {kind}: one name is emulated")
            doc = self._deployment_json(cluster, ns, names[0]) if kind == "Deployment" else cluster.objects.get(("Service", ns, names[0]))
            if doc is None:
                return fail(f'Error from server (NotFound): {kind.lower()}s "{names[0]}" not found', not_found=True)
            return Result(0, json.dumps({"apiVersion": "v1", **doc}))
        if names:
            raise _Unknown(f"kubectl get {kind} NAME is not emulated (lists only)")
        if kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
            items = [d for (k, n, _), d in sorted(cluster.objects.items()) if k == kind and n == ns and d.get("spec")]
        elif kind == "Pod":
            items = [pod_json(cluster, p) for w in sorted(cluster.workloads.values(), key=lambda w: w.name) if w.namespace == ns for p in w.pods]
        else:
            sel = _selector(opts["selector"] or "")
            service = cluster.objects.get(("Service", ns, sel.get("kubernetes.io/service-name", "")))
            if set(sel) != {"kubernetes.io/service-name"}:
                raise _Unknown("kubectl get endpointslices: only -l kubernetes.io/service-name=NAME is emulated")
            items = []
            if service is not None:
                selector = (service.get("spec") or {}).get("selector") or {}
                pods = [pod_json(cluster, p) for w in sorted(cluster.workloads.values(), key=lambda w: w.name) if w.namespace == ns for p in w.pods]
                chosen = [p for p in pods if selector and _matches(p["metadata"]["labels"], selector)]
                items = [{
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": f"{sel['kubernetes.io/service-name']}-sim", "namespace": ns, "labels": dict(sel)},
                    "endpoints": [
                        {"addresses": [f"10.0.0.{i + 1}"], "conditions": {"ready": p["status"]["phase"] == "Running"}, "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns}}
                        for i, p in enumerate(chosen)
                    ],
                }]
        return Result(0, json.dumps({"apiVersion": "v1", "kind": "List", "items": json.loads(json.dumps(items))}))

    @staticmethod
    def _deployment_json(cluster: Cluster, ns: str, name: str) -> dict | None:
        """A Deployment as the API server returns it; the starting point's gateways are rendered
        as their charts write them (Istio on GKE 1.6: an explicit proxyv2 image and the old
        istiod's CA_ADDR; 1.16: the gateway-injection form)."""
        from .source import workload_json

        w = cluster.workloads.get((ns, name))
        if w is None or w.kind != "Deployment":
            return None
        if w.manifest is not None:
            doc = json.loads(json.dumps(w.manifest))
        else:
            doc = workload_json(w)
            doc["spec"]["replicas"] = w.replicas
            proxy = {"name": "istio-proxy", "image": "auto"}
            if w.bound_revision is not None:
                proxy = {
                    "name": "istio-proxy", "image": "gke.gcr.io/istio/proxyv2:1.6.14-gke.4", "args": ["proxy", "router"],
                    "env": [{"name": "CA_ADDR", "value": f"{'istiod' if w.bound_revision == 'default' else 'istiod-' + w.bound_revision}.{SYSTEM_NS}.svc:15012"}],
                }
            doc["spec"]["template"]["spec"] = {"serviceAccountName": w.service_account, "containers": [proxy] if w.gateway else [{"name": "app", "image": f"example/{w.name}:1"}]}
        doc["status"] = {"replicas": len(w.pods), "readyReplicas": len(w.pods)}
        return doc

    def _get_configmap(self, cluster: Cluster, ns: str, name: str, output: str, opts: dict) -> Result:
        doc = self._configmap_doc(cluster, ns, name)
        if doc is None:
            if opts["ignore"]:
                return Result(0, "")
            return fail(f'Error from server (NotFound): configmaps "{name}" not found', not_found=True)
        if output.startswith("jsonpath="):
            return Result(0, _jsonpath(output[len("jsonpath=") :], doc))
        return Result(0, json.dumps(doc, indent=4) if output == "json" else yaml.safe_dump(doc, sort_keys=False))

    def _patch(self, cluster: Cluster, rest: list[str], opts: dict, stdin) -> Result:
        """``kubectl patch configmap NAME -n NS --type merge -p JSON`` (a JSON merge patch)."""
        if len(rest) == 1 and "/" in rest[0]:
            rest = rest[0].split("/", 1)
        if len(rest) == 2 and KINDS.get(rest[0].lower()) == "MutatingWebhookConfiguration":
            return self._patch_webhooks(cluster, rest[1], opts)
        if len(rest) != 2 or KINDS.get(rest[0].lower()) != "ConfigMap":
            raise _Unknown("kubectl patch: only 'patch configmap NAME' is emulated")
        if opts["type"] != "merge":
            raise _Unknown(f"kubectl patch --type {opts['type'] or '(strategic)'} is not emulated (merge only)")
        if opts["patch"] is None:
            return fail("error: must specify --patch or --patch-file containing the contents of the patch")
        name, ns = rest[1], opts["namespace"] or "default"
        try:
            patch = json.loads(opts["patch"])
        except ValueError as exc:
            return fail(f"error: unable to parse \"{opts['patch'][:60]}\": {exc}")
        if not isinstance(patch, dict):
            return fail("error: the patch is not a JSON object")
        key = ("ConfigMap", ns, name)
        if key not in cluster.objects:
            return fail(f'Error from server (NotFound): configmaps "{name}" not found', not_found=True)
        before = cluster.objects[key]
        after = _merge_patch(before, patch)
        if not all(isinstance(v, str) for v in (after.get("data") or {}).values()):
            return fail(f'The ConfigMap "{name}" is invalid: data: Invalid value: a ConfigMap\'s data values are strings')
        if after == before:
            return Result(0, f"configmap/{name} patched (no change)")
        cluster.objects[key] = after
        cluster.log(f"ConfigMap {ns}/{name} patched (istiod reads it at its next start)")
        return Result(0, f"configmap/{name} patched")

    def _patch_webhooks(self, cluster: Cluster, name: str, opts: dict) -> Result:
        """``kubectl patch mutatingwebhookconfiguration NAME --type json -p '[{"op": "replace",
        "path": "/webhooks", "value": [...]}]'`` (migrate-to-asm ``set_default_tag``); RFC 6902:
        ``replace``/``add`` need a ``value``, ``replace`` an existing member."""
        if opts["type"] != "json":
            raise _Unknown(f"kubectl patch mutatingwebhookconfiguration --type {opts['type'] or '(strategic)'} is not emulated (json only)")
        try:
            ops = json.loads(opts["patch"] or "")
        except ValueError as exc:
            return fail(f"error: unable to parse \"{(opts['patch'] or '')[:60]}\": {exc}")
        key = ("MutatingWebhookConfiguration", "", name)
        if key not in cluster.objects:
            return fail(f'Error from server (NotFound): mutatingwebhookconfigurations.admissionregistration.k8s.io "{name}" not found', not_found=True)
        doc = json.loads(json.dumps(cluster.objects[key]))
        for op in ops if isinstance(ops, list) else [None]:
            if not isinstance(op, dict) or op.get("path") != "/webhooks" or op.get("op") not in ("replace", "add"):
                raise _Unknown(f"JSON patch operation {op!r} is not emulated (replace/add /webhooks only)")
            if "value" not in op:
                return fail(f'The request is invalid: the server rejected our request due to an error in our request: missing value for op "{op["op"]}"')
            doc["webhooks"] = op["value"]
        cluster.objects[key] = doc
        cluster.log(f"MutatingWebhookConfiguration {name}: {len(doc.get('webhooks') or [])} webhooks")
        return Result(0, f"mutatingwebhookconfiguration.admissionregistration.k8s.io/{name} patched")

    def _create(self, cluster: Cluster, rest: list[str], opts: dict, stdin: str | None) -> Result:
        """``kubectl create --dry-run=server -f - -o json``: admission runs, nothing is stored.

        A Pod goes through the injector that selects it (``Cluster.injection_revision``); Istio
        config through the validating webhooks that select it (the default validator for
        objects without ``istio.io/rev``, ``istio-validator-REV`` for ``istio.io/rev=REV``),
        which deny an AuthorizationPolicy ``action: CUSTOM`` without ``rules`` (istio 1.19.10
        ``pkg/config/validation/validation.go`` lines 1998-2001); an unreachable one fails the
        request (failurePolicy Fail).
        """
        if rest or opts["filename"] != "-" or opts["dry_run"] != "server" or opts["output"] != "json":
            raise _Unknown("kubectl create: only 'create --dry-run=server -f - -o json' is emulated")
        docs = [d for d in yaml.safe_load_all(stdin or "") if d]
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise _Unknown("kubectl create --dry-run: one object on stdin")
        doc = docs[0]
        meta = doc.get("metadata") or {}
        ns = meta.get("namespace") or opts["namespace"] or "default"
        if ns not in cluster.namespaces:
            return fail(f'Error from server (NotFound): error when creating "STDIN": namespaces "{ns}" not found', not_found=True)
        if doc.get("kind") == "Pod":
            return self._dry_run_pod(cluster, doc, ns)
        if doc.get("kind") == "AuthorizationPolicy":
            return self._dry_run_istio_config(cluster, doc, ns)
        raise _Unknown(f"kubectl create --dry-run of kind {doc.get('kind')} is not emulated")

    def _dry_run_pod(self, cluster: Cluster, doc: dict, ns: str) -> Result:
        meta = doc.get("metadata") or {}
        probe = Workload(
            kind="Pod", namespace=ns, name=meta.get("name") or "pod", labels=dict(meta.get("labels") or {}),
            template_labels=dict(meta.get("labels") or {}), template_annotations=dict(meta.get("annotations") or {}),
            service_account=(doc.get("spec") or {}).get("serviceAccountName") or "default",
        )
        try:
            revision = cluster.injection_revision(probe)
        except SimError as exc:
            return fail(f'Error from server (InternalError): error when creating "STDIN": {exc}')
        out = json.loads(json.dumps(doc))
        if revision is not None:
            # what the 1.19 injector writes (istio-proxy, the revision annotations)
            out["spec"]["containers"] = [*out["spec"].get("containers", []), {"name": "istio-proxy", "image": "auto", "args": ["proxy", "sidecar"]}]
            out["metadata"].setdefault("annotations", {}).update(
                {"istio.io/rev": revision, "sidecar.istio.io/status": json.dumps({"revision": revision, "containers": ["istio-proxy"]})}
            )
        return Result(0, json.dumps(out))

    def _dry_run_istio_config(self, cluster: Cluster, doc: dict, ns: str) -> Result:
        name = (doc.get("metadata") or {}).get("name") or "x"
        spec = doc.get("spec") or {}
        action = spec.get("action", "ALLOW")
        if action not in AUTHZ_ACTIONS:
            return fail(
                f'The AuthorizationPolicy "{name}" is invalid: spec.action: Unsupported value: "{action}": '
                f'supported values: {", ".join(repr(a).replace(chr(39), chr(34)) for a in AUTHZ_ACTIONS)}'
            )
        rev = ((doc.get("metadata") or {}).get("labels") or {}).get("istio.io/rev")
        for (kind, _, vname), vwc in sorted(cluster.objects.items()):
            if kind != "ValidatingWebhookConfiguration":
                continue
            served = ((vwc.get("metadata") or {}).get("labels") or {}).get("istio.io/rev")
            default_validator = vname in ("istiod-default-validator", f"istiod-{SYSTEM_NS}")
            if not (default_validator and rev in (None, "default")) and not (not default_validator and rev is not None and rev == served):
                continue
            for hook in vwc.get("webhooks") or ():
                service = hook["clientConfig"]["service"]["name"]
                serving = cluster.service_revision(service)
                if serving is None or serving not in cluster.istiods or not cluster.istiods[serving].ready:
                    return fail(
                        f'Error from server (InternalError): error when creating "STDIN": Internal error occurred: '
                        f'failed calling webhook "{hook["name"]}": failed to call webhook: Post "https://{service}.{SYSTEM_NS}.svc:443/validate": '
                        + (f'service "{service}" not found' if serving is None else "no endpoints available")
                    )
                if action == "CUSTOM" and not spec.get("rules"):
                    return fail(
                        f'Error from server: error when creating "STDIN": admission webhook "{hook["name"]}" denied the request: '
                        "configuration is invalid: CUSTOM action without `rules` is meaningless as it will never be triggered, "
                        "add an empty rule `{}` if you want it be triggered for every request"
                    )
        return Result(0, json.dumps(doc))

    # ------------------------------------------------------------------------ istioctl

    def _istioctl(self, path: str, args: list[str]) -> Result:
        """``istioctl version --remote=false --short`` and ``istioctl --kubeconfig K --context C
        tag set default --revision R --overwrite`` (istio 1.19.10 istioctl/pkg/tag: ``Generate``
        and ``setTag``). The binary is the one asmcli linked into an output dir (or a project file)."""
        if not (self.mesh.wrote(path) or self.mesh.file_exists(path)):
            return fail(f"{path}: No such file or directory", 127)
        if args == ["version", "--remote=false", "--short"]:
            return Result(0, ISTIOCTL_VERSION + "\n")
        flags = _flags([a for a in args if a not in ("tag", "set", "default")], {"--kubeconfig", "--context", "--revision"}, {"--overwrite"})
        if [a for a in args if a in ("tag", "set", "default")] != ["tag", "set", "default"] or not _last(flags, "--revision"):
            raise _Unknown(f"istioctl {' '.join(args[:3])} is not emulated (tag set default --revision R only)")
        if not _last(flags, "--context"):
            raise _Unknown("istioctl without --context would act on the kubeconfig's current context")
        cluster = self.mesh.cluster_for(_last(flags, "--kubeconfig"), _last(flags, "--context"))
        revision = _last(flags, "--revision")
        webhooks = {n: d for (k, _, n), d in cluster.objects.items() if k == "MutatingWebhookConfiguration"}
        labels = lambda d: (d.get("metadata") or {}).get("labels") or {}  # noqa: E731
        canonical = [d for d in webhooks.values() if labels(d).get("istio.io/rev") == revision and "istio.io/tag" not in labels(d)]
        if not canonical:
            return fail(f'Error: cannot modify tag: cannot find MutatingWebhookConfiguration with revision "{revision}"')
        if len(canonical) > 1:
            return fail(f'Error: cannot modify tag: found multiple canonical webhooks with revision "{revision}"')
        if any(labels(d).get("istio.io/tag") == "default" for d in webhooks.values()) and "--overwrite" not in flags:
            return fail('Error: revision tag "default" already exists, and --overwrite is false')
        # DeactivateIstioInjectionWebhook: the istio.io/rev=default injector selects nothing.
        for d in webhooks.values():
            if labels(d).get("istio.io/rev") == "default" and "istio.io/tag" not in labels(d):
                for hook in d.get("webhooks") or ():
                    hook["namespaceSelector"] = {"matchLabels": dict(NEVER_MATCH)}
                    hook["objectSelector"] = {"matchLabels": dict(NEVER_MATCH)}
        # DeleteDeprecatedValidator: app=istiod validators whose name lacks "validator".
        for key in [k for k, d in cluster.objects.items() if k[0] == "ValidatingWebhookConfiguration" and labels(d).get("app") == "istiod" and "validator" not in k[2]]:
            del cluster.objects[key]
        service = canonical[0]["webhooks"][0]["clientConfig"] if canonical[0].get("webhooks") else {"service": {"name": f"istiod-{revision}", "namespace": SYSTEM_NS}}
        cluster.objects[("MutatingWebhookConfiguration", "", "istio-revision-tag-default")] = {
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "istio-revision-tag-default", "labels": {"istio.io/rev": revision, "istio.io/tag": "default"}},
            "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "clientConfig": json.loads(json.dumps(service))}],
        }
        cluster.objects[("ValidatingWebhookConfiguration", "", "istiod-default-validator")] = {
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "istiod-default-validator", "labels": {"app": "istiod", "istio.io/rev": revision}},
            "webhooks": [{"name": "validation.istio.io", "clientConfig": json.loads(json.dumps(service))}],
        }
        cluster.log(f"revision tag default -> {revision} (istio-revision-tag-default, istiod-default-validator)")
        return Result(
            0,
            f'Revision tag "default" created, referencing control plane revision "{revision}". To enable injection using this\n'
            "revision tag, use 'kubectl label namespace <NAMESPACE> istio.io/rev=default'\n",
            cluster=cluster.name,
        )

    def _rollout(self, cluster: Cluster, rest: list[str], opts: dict, stdin) -> Result:
        if len(rest) != 2 or rest[0] != "restart" or KINDS.get(rest[1].lower()) != "Deployment":
            raise _Unknown("kubectl rollout: only 'rollout restart deployment -n NS' is emulated")
        ns = opts["namespace"] or "default"
        if ns == SYSTEM_NS:
            names = cluster.restart_istio_system()
        else:
            names = []
            for w in sorted((w for w in cluster.workloads.values() if w.namespace == ns and w.kind == "Deployment"), key=lambda w: w.name):
                cluster.rollout(w)
                names.append(w.name)
        return Result(0, "\n".join(f"deployment.apps/{n} restarted" for n in names))

    # ------------------------------------------------------------------------ asmcli

    def _asmcli(self, args: list[str], stdin: str | None) -> Result:
        if args == ["--version"]:
            return Result(0, ASMCLI_VERSION)
        if not args or args[0] not in ("install", "apply"):
            raise _Unknown(f"asmcli {' '.join(args[:1]) or '(nothing)'} is not emulated")
        sub = args[0]
        values: dict[str, list[str]] = {}
        i = 1
        while i < len(args):
            a = args[i]
            if a in ASMCLI_BOOL_FLAGS:
                values.setdefault(a, []).append("1")
            elif a in ASMCLI_VALUE_FLAGS:
                if i + 1 >= len(args):
                    return fail(f"asmcli: [ERROR]: Missing value for {a}", 2)
                values.setdefault(ASMCLI_VALUE_FLAGS[a], []).append(args[i + 1])
                i += 1
            else:
                return fail(f"asmcli: [ERROR]: Unknown option {a}", 2)
            i += 1
        one = lambda k: (values.get(k) or [None])[-1]  # noqa: E731
        ca = one("ca") or "mesh_ca"
        if ca not in ASMCLI_CAS:
            return fail(f"asmcli: [ERROR]: CA must be one of: {', '.join(ASMCLI_CAS)}", 2)
        if not one("kubeconfig"):
            return fail("asmcli: [ERROR]: the rehearsal needs --kubeconfig (project/location/name selection is not emulated)", 2)
        if not one("context"):
            return fail("asmcli: [ERROR]: no --context: asmcli would install into the kubeconfig's current context", 2)
        # "$KUBECONFIG": the shell expands it from the Command's environment (meshca/commands.py
        # KUBECONFIG_REF); the rehearsal selects the cluster by its context.
        kubeconfig = None if one("kubeconfig") == "$KUBECONFIG" else one("kubeconfig")
        cluster = self.mesh.cluster_for(kubeconfig, one("context"))
        revision = one("revision_name")
        if not revision:
            return fail("asmcli: [ERROR]: the rehearsal needs --revision_name (the default asm-<version> name is not emulated)", 2)
        if len(revision) > 63 or not DNS1123.match(revision):
            return fail(f"asmcli: [ERROR]: revision name {revision} is not a valid RFC 1123 label", 2)
        if not one("output_dir"):
            return fail("asmcli: [ERROR]: the rehearsal needs --output_dir (asmcli writes its package there)", 2)
        custom = [k for k in CERT_FLAGS if k in values]
        if custom and ca != "citadel":
            return fail("asmcli: [ERROR]: You must select Citadel as the CA in order to use custom certificates.", 2)
        if custom and len(custom) != 4:
            return fail("asmcli: [ERROR]: All four certificate options must be present to use a custom certificate.", 2)
        if ca not in ("citadel", "mesh_ca"):
            raise _Unknown(f"asmcli --ca {ca} is not simulated")
        for option in values.get("option", []):
            if option not in ASMCLI_OPTIONS:
                return fail(f"asmcli: [ERROR]: Couldn't find yaml file {option}.", 2)
        overlays = []
        for path in values.get("custom_overlay", []):
            if not self.mesh.file_exists(path):
                return fail(f"asmcli: [ERROR]: Couldn't find yaml file {path}.", 2)
            try:
                overlays.append(yaml.safe_load(self.mesh.read_file(path)) or {})
            except yaml.YAMLError as exc:
                return fail(f"asmcli: [ERROR]: {path} is not YAML: {exc}", 2)
        files: dict[str, bytes] = {}
        if custom:
            problem = self._check_custom_ca(values, files)
            if problem:
                return fail(problem, 2)
        gateway = ("Deployment", SYSTEM_NS, "istio-ingressgateway") in cluster.objects or (SYSTEM_NS, "istio-ingressgateway") in cluster.workloads or ("Service", SYSTEM_NS, "istio-ingressgateway") in cluster.objects
        if gateway and "legacy-default-ingressgateway" not in values.get("option", []):
            # asmcli's `read` prompt "Continue? [y/N]" (also under `apply`).
            if not (stdin or "").strip().lower().startswith("y"):
                return fail("asmcli: istio-ingressgateway exists in istio-system. Continue? [y/N]\nasmcli: [ERROR]: Stopping installation at user request.", 1)
        if custom:
            if (SYSTEM_NS, "cacerts") in cluster.secrets:
                return fail(
                    "asmcli: [ERROR]: Custom certificates already exist in the cluster (secret cacerts in istio-system). "
                    "Please re-run the script without any of the custom certificate flags.",
                    1,
                )
            # kubectl create secret generic cacerts --from-file=<each path>: keys are basenames.
            cluster.put_secret("cacerts", {Path(values[k][-1]).name: files[k] for k in CERT_FLAGS})
        # istioctl 1.19 layers asmcli's -f files with a strategic merge whose meshConfig schema has
        # no caCertificates (istio/istio release-1.19 operator/pkg/util/merge_iop.go lines 134-154,
        # OverlayIOP 231-266): a list set by two files fails in apimachinery's mergeMap
        # (pkg/util/strategicpatch/patch.go), so the install stops before anything is applied.
        ca_lists = int("ca-migration-citadel" in values.get("option", [])) + sum(
            1 for d in overlays if isinstance(d, dict) and "caCertificates" in (((d.get("spec") or {}).get("meshConfig") or {}) if isinstance(d.get("spec"), dict) else {})
        )
        if ca_lists > 1:
            return fail('asmcli: [ERROR]: Error: generate config: json merge error (unable to find api field in struct meshConfig for the json field "caCertificates")', 1)
        istiod = self._istiod(values, ca, revision, overlays)
        existed = revision in cluster.istiods
        cluster.add_istiod(istiod, installed_state=f"installed-state-{revision}")
        out_dir = one("output_dir").rstrip("/")
        self.mesh.write_file(f"{out_dir}/asm/istio/istiod-service.yaml", _istiod_service(revision).encode())
        # asmcli/asmcli line 4103: `ln -s istio-${RELEASE}/bin/istioctl .` in the output dir
        self.mesh.write_file(f"{out_dir}/istioctl", f"istioctl {ISTIOCTL_VERSION}\n".encode())
        cluster.log(f"asmcli {sub}: istiod {revision} {'updated' if existed else 'installed'} (--ca {ca}, trustDomain {istiod.trust_domain})")
        return Result(0, f"asmcli: Successfully installed ASM.\nkubectl label namespace <NAMESPACE> istio-injection- istio.io/rev={revision} --overwrite")

    def _check_custom_ca(self, values: dict, files: dict[str, bytes]) -> str | None:
        for k in CERT_FLAGS:
            path = values[k][-1]
            if not self.mesh.file_exists(path):
                return f"asmcli: [ERROR]: Couldn't find file {path}."
            files[k] = self.mesh.read_file(path)
        from cryptography.hazmat.primitives import serialization

        key = _CA_KEYS.get(files["ca_key"])
        if key is None:  # loaded (and checked) once per content: an RSA key check is slow
            try:
                key = serialization.load_pem_private_key(files["ca_key"], password=None)
            except (ValueError, TypeError):
                return "asmcli: [ERROR]: The CA key is not a valid key (openssl rsa -check)."
            _CA_KEYS[files["ca_key"]] = key
        if not isinstance(key, rsa.RSAPrivateKey):
            return "asmcli: [ERROR]: The CA key is not a valid RSA key (openssl rsa -check)."
        try:
            ca_cert = load_certs(files["ca_cert"])[0]
            root = load_certs(files["root_cert"])[0]
            chain = load_certs(files["cert_chain"])
        except ValueError:
            return "asmcli: [ERROR]: A certificate file is not a PEM certificate (openssl x509)."
        if key.public_key().public_numbers() != getattr(ca_cert.public_key(), "public_numbers", lambda: None)():
            return "asmcli: [ERROR]: The CA certificate and key do not match (modulus differs)."
        if verify_path(ca_cert, chain, [root]) is None:
            return "asmcli: [ERROR]: The CA certificate does not verify against the root and chain (openssl verify)."
        return None

    def _istiod(self, values: dict, ca: str, revision: str, overlays: list[dict]) -> Istiod:
        fleet = (values.get("fleet_id") or values.get("project_id") or ["unknown"])[-1]
        sw = self.mesh.switches
        options = tuple(values.get("option", []))
        base = base_aliases(fleet)
        if ca == "citadel":
            # options/citadel-ca.yaml sets trustDomain cluster.local; the aliases setter stays.
            trust_domain, aliases = "cluster.local", base if sw["citadel-keeps-base-aliases"] else ()
        else:
            trust_domain, aliases = f"{fleet}.svc.id.goog", base
        if "ca-migration-meshca" in options:
            aliases = ("cluster.local",) if sw["overlay-aliases"] == "replace" else tuple(dict.fromkeys((*aliases, "cluster.local")))
        ca_certs = [self.mesh.meshca.root] if "ca-migration-citadel" in options else []
        for doc in overlays:
            mesh_config = ((doc.get("spec") or {}).get("meshConfig") or {}) if isinstance(doc, dict) else {}
            if "trustDomainAliases" in mesh_config:
                aliases = tuple(mesh_config["trustDomainAliases"] or ())
            for entry in mesh_config.get("caCertificates") or ():
                if isinstance(entry, dict) and entry.get("pem"):
                    ca_certs.extend(load_certs(entry["pem"].encode()))
        return Istiod(
            revision=revision,
            ca=ca,
            options=options,
            trust_domain=trust_domain,
            aliases=tuple(aliases),
            fleet_domain=f"{fleet}.svc.id.goog",
            ca_certificates=tuple(ca_certs),
            version="1.19",  # asmcli 1.19.10: pods get the istio.io/rev annotation (meshca/injection.py)
        )

    # ------------------------------------------------------------------------ meshca

    def _meshca(self, args: list[str]) -> Result:
        if not args:
            raise _Unknown("meshca without a subcommand")
        if args[0] == "restart":
            flags = _flags(args[1:], {"--kubeconfig", "--context", "--namespace", "-n", "--revision", "--timeout"}, set())
            namespace = _last(flags, "--namespace") or _last(flags, "-n")
            if not namespace or not _last(flags, "--revision"):
                raise _Unknown("meshca restart needs --namespace and --revision")
            if not _last(flags, "--context"):
                raise _Unknown("meshca restart without --context would act on the kubeconfig's current context")
            try:
                cluster = self.mesh.cluster_for(_last(flags, "--kubeconfig"), _last(flags, "--context"))
            except SimError as exc:  # meshca restart names kubectl's failure (meshca/restart.py)
                if str(exc).startswith("Unable to connect to the server"):
                    return fail(MeshcaError("ApiServerUnreachable", f"context {_last(flags, '--context')}", reason=str(exc)).line(), 2)
                raise
            return self._restart(cluster, namespace, _last(flags, "--revision"), _last(flags, "--timeout") or "600s")
        if args[0] == "preflight":
            return self._preflight(args[1:])
        if args[0] == "check":
            if len(args) < 2 or self.check is None:
                raise _Unknown("meshca check without a check kind")
            return self.check(list(args[1:]))
        if args[0] in ("overlay", "mesh-config"):
            return self._meshconfig(args)
        if args[0] == "webhooks":
            return self._webhooks(args)
        if args[0] == "gateway":
            return self._gateway(args)
        if args[0] == "tool-version":
            return self._tool_version(args[1:])
        raise _Unknown(f"meshca {args[0]} is not emulated")

    def _tool_version(self, args: list[str]) -> Result:
        """``meshca tool-version --expect V -- TOOL ARGS`` (meshca/toolversion.py): the tool's
        output, stripped, must equal V exactly, else MCA0910 and exit 2."""
        if "--expect" not in args or "--" not in args:
            raise _Unknown("meshca tool-version needs --expect V -- TOOL ARGS")
        expected = args[args.index("--expect") + 1]
        inner = args[args.index("--") + 1 :]
        done = self.run(tuple(inner))
        if done.rc != 0:
            from ..errors import MeshcaError

            return fail(MeshcaError("ToolNotRunnable", inner[0], tool=" ".join(inner), reason=f"exit status {done.rc}", path=inner[0]).line(), 2)
        if done.stdout.strip() != expected:
            from ..errors import MeshcaError

            return fail(MeshcaError("ToolVersionMismatch", "meshca:asmcliVersion", tool=" ".join(inner), got=done.stdout.strip(), expected=expected, key="meshca:asmcliVersion").line(), 2)
        return Result(0, done.stdout)

    def _meshconfig(self, args: list[str]) -> Result:
        """``meshca overlay citadel-root`` and ``meshca mesh-config drop-root`` (meshca/meshconfig.py).

        The real command line and the real functions: the root file is checked by meshconfig's
        own ``_root``, the overlay text is ``overlay_text``, and ``drop_root`` runs as it is, its
        ``kubectl get configmap`` / ``kubectl patch configmap`` going through this emulator. The
        overlay is written to the simulated files, where asmcli's ``--custom_overlay`` reads it.
        What meshca would refuse is its own coded line(s) and exit 2.
        """
        from .. import meshconfig
        from ..cli import _Parser
        from ..errors import MeshcaErrors

        parser = _Parser(prog="meshca")
        meshconfig.register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
        shown: dict[str, str] = {}
        try:
            with tempfile.TemporaryDirectory(prefix="meshca-sim-") as scratch:
                return self._meshconfig_run(parser.parse_args(args), Path(scratch), shown)
        except (MeshcaErrors, MeshcaError) as exc:
            if isinstance(exc, MeshcaError) and exc.name == "RehearseUnknownCommand":
                raise  # a nested argv the emulator does not know: never a tool failure
            lines = exc.lines() if isinstance(exc, MeshcaErrors) else [exc.line()]
            for real, given in shown.items():  # meshca runs in the project directory: it names the path as given
                lines = [line.replace(real, given) for line in lines]
            return Result(2, stderr="\n".join(lines))

    def _webhooks(self, args: list[str]) -> Result:
        """``meshca webhooks strays|verify``: the real functions (meshca/webhooks.py), their
        kubectl calls through this emulator; meshca's refusal is its coded lines and exit 2."""
        from .. import webhooks
        from ..cli import _Parser
        from ..errors import MeshcaErrors

        parser = _Parser(prog="meshca")
        webhooks.register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
        try:
            ns = parser.parse_args(args)
            if not ns.context:
                raise _Unknown("meshca webhooks without --context would act on the kubeconfig's current context")
            kube = _EmulatedKube(self, ns.kubeconfig, ns.context)
            cluster = self.mesh.cluster_for(ns.kubeconfig, ns.context).name
            if ns.webhooks_command == "strays":
                labels = dict(item.split("=", 1) for item in ns.label)
                errors = webhooks.strays(kube, labels, list(ns.namespace))
                ok = "no stray injection label"
            else:
                errors = webhooks.check_validation(kube) + webhooks.check_injection(kube, ns.revision)
                ok = f"validation denied, injection by {ns.revision}"
        except (MeshcaErrors, MeshcaError) as exc:
            if isinstance(exc, MeshcaError) and exc.name == "RehearseUnknownCommand":
                raise
            return Result(2, stderr="\n".join(exc.lines() if isinstance(exc, MeshcaErrors) else [exc.line()]))
        if errors:
            return Result(2, stderr="\n".join(e.line() for e in errors), cluster=cluster)
        return Result(0, ok, cluster=cluster)

    def _gateway(self, args: list[str]) -> Result:
        """``meshca gateway clone|ready`` (meshca/gateway.py's functions, kubectl through this
        emulator). ``ready`` reads once: simulated rollouts are done when ``apply`` returns."""
        from .. import gateway
        from ..cli import _Parser
        from ..errors import MeshcaErrors

        parser = _Parser(prog="meshca")
        gateway.register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
        try:
            ns = parser.parse_args(args)
            if not ns.context:
                raise _Unknown("meshca gateway without --context would act on the kubeconfig's current context")
            kube = _EmulatedKube(self, ns.kubeconfig, ns.context)
            cluster = self.mesh.cluster_for(ns.kubeconfig, ns.context).name
            if ns.gateway_command == "clone":
                return Result(0, gateway.clone(kube, ns.namespace, ns.deployment, ns.service, ns.name, ns.revision), cluster=cluster)
            ready, need = gateway.ready_check(kube, ns.namespace, ns.deployment, ns.service, ns.name, ns.revision)
            if len(ready) < need:
                return Result(2, stderr=gateway.not_serving(ns.namespace, ns.service, ns.name, ns.revision, ready, need).line(), cluster=cluster)
            return Result(0, f"{len(ready)} ready {ns.revision} canary endpoints (need {need})", cluster=cluster)
        except (MeshcaErrors, MeshcaError) as exc:
            if isinstance(exc, MeshcaError) and exc.name == "RehearseUnknownCommand":
                raise
            return Result(2, stderr="\n".join(exc.lines() if isinstance(exc, MeshcaErrors) else [exc.line()]))

    def _meshconfig_run(self, ns, scratch: Path, shown: dict[str, str]) -> Result:
        import io

        from cryptography.hazmat.primitives import serialization

        from .. import meshconfig

        if ns.command == "overlay":
            root = meshconfig._root(self._project_file(ns.root_cert, scratch, shown))
            text = meshconfig.overlay_text(root.public_bytes(serialization.Encoding.PEM).decode())
            self.mesh.write_file(ns.output, text.encode())
            self.mesh.log(f"meshca wrote {ns.output} (caCertificates: root sha256 {short_fingerprint(fingerprint(root))})")
            return Result(0, f"wrote {ns.output}")
        if not ns.context:
            raise _Unknown("meshca mesh-config without --context would act on the kubeconfig's current context")
        out = io.StringIO()
        kubectl = _EmulatedKubectl(self, ns.kubeconfig, ns.context)
        rc = meshconfig.drop_root(kubectl, ns.revision, self._project_file(ns.root_cert, scratch, shown), out=out)
        return Result(rc, out.getvalue(), cluster=self.mesh.cluster_for(ns.kubeconfig, ns.context).name)

    def _project_file(self, path: str, scratch: Path, shown: dict[str, str]) -> str:
        """A file meshca reads, as a path on disk: the project file, or a copy of one a step wrote."""
        real = self.mesh.real_path(path)
        if self.mesh.wrote(path):
            real = scratch / Path(path).name
            real.write_bytes(self.mesh.read_file(path))
        shown[str(real)] = path
        return str(real)

    def _restart(self, cluster: Cluster, namespace: str, revision: str, timeout: str) -> Result:
        """``meshca restart``, deciding with meshca/restart.py's own rules (plan_restart):
        istiod-REV must be ready; only workloads not yet on REV restart; then wait."""
        from ..restart import KIND_NAMES, istiod_name, plan_restart
        from .source import pod_json, workload_json

        cluster.namespace(namespace)
        name = istiod_name(revision)
        if ("Deployment", SYSTEM_NS, name) not in cluster.objects or revision not in cluster.istiods:
            reason = f'Error from server (NotFound): deployments.apps "{name}" not found'
            return fail(MeshcaError("IstiodMissing", f"{SYSTEM_NS}/{name}", name=name, revision=revision, reason=reason).line(), 2)
        if not cluster.istiods[revision].ready:
            return fail(MeshcaError("IstiodNotReady", f"{SYSTEM_NS}/{name}", name=name, ready=0).line(), 2)
        # The namespace's workloads from the cluster's index, not a scan of every workload.
        everything = sorted(cluster.in_namespace(namespace), key=lambda w: (w.kind, w.name))
        workloads = [w for w in everything if w.kind in WORKLOAD_KINDS]
        pods = [pod_json(cluster, p) for w in everything for p in w.pods]
        todo, orphans = plan_restart([workload_json(w) for w in workloads], pods, revision)
        out = []
        for kind, wname in todo:
            w = cluster.workloads[(namespace, wname)]
            try:
                cluster.rollout(w)
            except SimError as exc:
                line = MeshcaError(
                    "RolloutFailed", f"{namespace}/{KIND_NAMES[kind]}/{wname}", kind=KIND_NAMES[kind], name=wname,
                    timeout=timeout, namespace=namespace, reason=str(exc),
                ).line()
                return Result(2, "\n".join(out), line)
            out.append(f"restarted {namespace}/{KIND_NAMES[kind]}/{wname}")
        out.append(f"namespace {namespace}: {len(todo)} restarted onto {revision}, {len(workloads) - len(todo)} already on it")
        out += [f"cannot restart {namespace}/{orphan}" for orphan in orphans]
        return Result(0, "\n".join(out), cluster=cluster.name)


    def _preflight(self, args: list[str]) -> Result:
        """``meshca preflight``, deciding with meshca/preflight.py's own rules on the model's
        namespaces and Deployments (what ``kubectl get namespace`` / ``get deployments -A`` return)."""
        from ..preflight import namespace_problems, operator_problems
        from .source import workload_json

        flags = _flags(args, {"--kubeconfig", "--context", "--revision", "--gateway-namespace"}, {"--no-operator"})
        revision = _last(flags, "--revision")
        if not revision:
            raise _Unknown("meshca preflight needs --revision")
        if not _last(flags, "--context"):
            raise _Unknown("meshca preflight without --context would act on the kubeconfig's current context")
        try:
            cluster = self.mesh.cluster_for(_last(flags, "--kubeconfig"), _last(flags, "--context"))
        except SimError as exc:
            if str(exc).startswith("Unable to connect to the server"):
                return fail(MeshcaError("ApiServerUnreachable", f"context {_last(flags, '--context')}", reason=str(exc)).line(), 2)
            raise
        problems = []
        namespaces = list(dict.fromkeys(flags.get("--gateway-namespace", [])))
        for ns in namespaces:
            if ns not in cluster.namespaces:
                reason = f'Error from server (NotFound): namespaces "{ns}" not found'
                return fail(MeshcaError("RestartListFailed", f"namespace/{ns}", reason=reason).line(), 2)
            problems += namespace_problems({"metadata": {"name": ns, "labels": dict(cluster.namespaces[ns].labels)}}, revision)
        if "--no-operator" in flags:
            deployments = []
            for w in cluster.workloads.values():
                if w.kind == "Deployment":
                    doc = workload_json(w)
                    doc["spec"]["replicas"] = w.replicas
                    deployments.append(doc)
            problems += operator_problems(deployments)
        if problems:
            return Result(2, stderr="\n".join(p.line() for p in problems), cluster=cluster.name)
        return Result(0, f"pre-flight for {revision}: ok", cluster=cluster.name)


class _EmulatedKubectl:
    """meshca.restart.Kubectl whose ``run`` goes through the emulator (what meshca would exec)."""

    def __init__(self, emulator: "Emulator", kubeconfig: str | None, context: str | None) -> None:
        from ..restart import Kubectl

        self.emulator = emulator
        self.real = Kubectl(kubeconfig, context)

    def unreachable(self, proc: subprocess.CompletedProcess):
        return self.real.unreachable(proc)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = self.real.argv(*args)
        result = self.emulator.run(argv, subject=" ".join(argv[:8]))
        return subprocess.CompletedProcess(argv, result.rc, result.stdout, result.stderr)


class _EmulatedKube:
    """meshca.webhooks.Kube whose ``run`` (stdin included) goes through the emulator."""

    def __init__(self, emulator: "Emulator", kubeconfig: str | None, context: str | None) -> None:
        from ..webhooks import Kube

        self.emulator = emulator
        self.real = Kube(kubeconfig, context)

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = self.real.argv(*args)
        result = self.emulator.run(argv, stdin, subject=" ".join(argv[:8]))
        return subprocess.CompletedProcess(argv, result.rc, result.stdout, result.stderr)


def _flags(args: list[str], valued: set[str], boolean: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        a, val = args[i], None
        if a.startswith("--") and "=" in a:
            a, val = a.split("=", 1)
        if a in boolean and val is None:
            out.setdefault(a, []).append("1")
        elif a in valued:
            if val is None:
                if i + 1 >= len(args):
                    raise _Unknown(f"flag {a} has no value")
                val = args[i + 1]
                i += 1
            out.setdefault(a, []).append(val)
        else:
            raise _Unknown(f"flag {a} is not emulated")
        i += 1
    return out


def _last(flags: dict[str, list[str]], name: str) -> str | None:
    return (flags.get(name) or [None])[-1]


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``kubectl patch --type merge``): null deletes a key."""
    if not isinstance(patch, dict):
        return json.loads(json.dumps(patch))
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


def _jsonpath(template: str, obj: dict) -> str:
    """kubectl's jsonpath for plain field paths (``{.data.ca-cert\\.pem}``); literal text kept."""
    import re

    def lookup(match: "re.Match[str]") -> str:
        path = re.split(r"(?<!\\)\.", match.group(1).lstrip("."))
        value: Any = obj
        for part in path:
            part = part.replace("\\.", ".")
            if not isinstance(value, dict) or part not in value:
                return ""
            value = value[part]
        return value if isinstance(value, str) else json.dumps(value)

    if "[" in template or "range" in template:
        raise _Unknown(f"jsonpath '{template}' is not emulated (plain field paths only)")
    return re.sub(r"\{([^}]*)\}", lookup, template)


def _selector(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if not eq or not k:
            raise _Unknown(f"label selector '{text}' is not emulated (only k=v,k=v)")
        out[k] = v
    return out


def _matches(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _istiod_service(revision: str) -> str:
    """asm/istio/istiod-service.yaml as asmcli leaves it in the output dir (kpt setter = REV)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "istiod",
            "namespace": SYSTEM_NS,
            "labels": {"istio.io/rev": revision, "app": "istiod", "istio": "pilot", "release": "istio"},
        },
        "spec": {
            "ports": [
                {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
            ],
            "selector": {"app": "istiod", "istio.io/rev": revision},
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def canonical_cacerts(cluster: Cluster) -> dict[str, bytes] | None:
    data = cluster.secrets.get((SYSTEM_NS, "cacerts"))
    if data is None:
        return None
    return {k: data[k] for k in CANONICAL_KEYS if k in data}


def live_root_fingerprints(cluster: Cluster) -> list[tuple[str, str]]:
    """(source, fingerprint) of the roots the cluster's CA secrets hold."""
    out = []
    cacerts = cluster.secrets.get((SYSTEM_NS, "cacerts"))
    if cacerts and "root-cert.pem" in cacerts:
        out.append(("cacerts root-cert.pem", fingerprint(load_certs(cacerts["root-cert.pem"])[0])))
    ica = cluster.secrets.get((SYSTEM_NS, "istio-ca-secret"))
    if ica and "ca-cert.pem" in ica:
        out.append(("istio-ca-secret ca-cert.pem", fingerprint(load_certs(ica["ca-cert.pem"])[0])))
    return out
