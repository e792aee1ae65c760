"""Sidecar injection as Istio 1.19's injector does it, transcribed (not run) from istio/istio 1.19.10.

Sources (istio/istio tag 1.19.10, commit 745cdaa0dfdbeb31393fed75028a8c629c0f3a36):
- T  = manifests/charts/istio-control/istio-discovery/files/injection-template.yaml
- G  = manifests/charts/istio-control/istio-discovery/files/gateway-injection-template.yaml
- V  = manifests/charts/istio-control/istio-discovery/values.yaml (chart defaults)
- IG = pkg/kube/inject/inject.go, WH = pkg/kube/inject/webhook.go

What is rendered: the template's pod metadata (labels T:31-37 / G:4-6, annotations T:38-66 /
G:7-13), ``istio-init`` (T:69-159; not with CNI), ``istio-proxy`` (T:190-448 / G:15-186) with its
env, probe, security context and mounts, the volumes (T:449-523 / G:187-239). Then, as
``injectPod`` (WH:436-468): merge the template onto the pod (containers, initContainers and
volumes by name), re-apply a user's own ``istio-proxy`` container on top with ``image: auto``
dropped (WH:495-518, WH:887) and record it in ``proxy.istio.io/overrides`` (WH:543-553), add
``sidecar.istio.io/status`` from the TEMPLATE pod's names with ``"revision"`` (WH:388-413,
WH:660-666), order containers (proxy last, istio-init last, WH:674-718) and return a JSON patch of
the difference (WH:619-629). The injection decision is ``injectRequired`` (IG:189-275) with the
chart's ``policy: enabled``: host-network pods, kube-system/kube-public and
``sidecar.istio.io/inject`` false-y (label wins over annotation) are not injected.

Not modelled: probe rewriting (WH:720-738), Prometheus merge (WH:781-812), per-pod
``proxy.istio.io/config``, native sidecars, ``sidecar.istio.io/userVolume*``, custom templates
other than ``sidecar`` and ``gateway``, re-injection of an already injected pod.
"""

from __future__ import annotations

import copy
import json

ISTIO_VERSION = "1.19.10-asm.9"
IGNORED_NAMESPACES = ("kube-system", "kube-public")  # IG: IgnoredNamespaces (constants.KubeSystemNamespace, KubePublicNamespace)

# Chart defaults (V) with the ASM base IstioOperator's values (asm/istio/istio-operator.yaml at
# 1.19.10-asm.9+config1: hub gke.gcr.io/asm, tag = release, sts.servicePort 15463, caAddress
# meshca.googleapis.com:443, pilotCertProvider kubernetes) unless a revision's registry says otherwise.
DEFAULT_VALUES = {
    "hub": "gke.gcr.io/asm",
    "tag": ISTIO_VERSION,
    "clusterDomain": "cluster.local",  # V:304
    "logLevel": "warning",  # V:331
    "componentLogLevel": "misc:error",  # V:308
    "loggingLevel": "default:info",  # V:262
    "statusPort": "15020",  # V:355
    "readinessInitialDelaySeconds": "1",  # V:340
    "readinessPeriodSeconds": "2",  # V:343
    "readinessFailureThreshold": "30",  # V:337
    "includeIPRanges": "*",  # V:324
    "excludeIPRanges": "",  # V:325
    "includeInboundPorts": "*",  # V:317
    "excludeInboundPorts": "",  # V:316
    "jwtPolicy": "third-party-jwt",  # V:388
    "tokenAud": "istio-ca",  # V:470 (ASM sets FLEET.svc.id.goog)
    "stsPort": 15463,
    "caAddress": "",
    "pilotCertProvider": "istiod",
    "clusterName": "Kubernetes",
    "network": "",
    "meshID": "",
    "trustDomain": "cluster.local",
    "proxyMetadata": {},
    "cni": False,
}


def _ann(meta: dict, key: str, default):
    """The template's ``annotation .ObjectMeta key default``."""
    v = (meta.get("annotations") or {}).get(key)
    return v if v not in (None, "") else default


def inject_required(pod: dict, namespace: str) -> bool:
    """IG:189-275 with policy enabled (istiod-injector-configmap: ``policy: enabled``)."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    if spec.get("hostNetwork"):
        return False  # IG:196-198
    if namespace in IGNORED_NAMESPACES:
        return False  # IG:201-205
    sel = (meta.get("annotations") or {}).get("sidecar.istio.io/inject", "")
    labels = meta.get("labels") or {}
    if "sidecar.istio.io/inject" in labels:
        sel = labels["sidecar.istio.io/inject"]  # IG:213-216 the label wins
    s = str(sel).lower()
    if s in ("y", "yes", "true", "on"):
        return True
    if s == "":
        return True  # IG:269-274 InjectionPolicyEnabled + useDefault
    return False


def _deploy_name(pod: dict) -> str:
    """kube.GetDeployMetaFromPod: ReplicaSet owner -> Deployment name (strip the pod-template-hash)."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            name = ref.get("name", "")
            if ref.get("kind") == "ReplicaSet":
                h = (meta.get("labels") or {}).get("pod-template-hash")
                if h and name.endswith("-" + h):
                    return name[: -len(h) - 1]
            return name
    return meta.get("name") or (meta.get("generateName") or "").rstrip("-")


def _proxy_env(pod: dict, revision: str, v: dict, gateway: bool) -> list[dict]:
    meta = pod["metadata"]
    app_containers = [c["name"] for c in pod["spec"].get("containers") or [] if c["name"] != "istio-proxy"]
    ports = []
    for c in pod["spec"].get("containers") or []:
        for p in c.get("ports") or []:
            ports.append(json.dumps(p, separators=(",", ":")))
    discovery = f"istiod{'' if revision in ('', 'default') else '-' + revision}.istio-system.svc:15012"
    ca_addr = v["caAddress"] or discovery
    env = [
        {"name": "JWT_POLICY", "value": v["jwtPolicy"]},  # T:232-233 / G:45-46
        {"name": "PILOT_CERT_PROVIDER", "value": v["pilotCertProvider"]},  # T:234-235
        {"name": "CA_ADDR", "value": ca_addr},  # T:236-241
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "SERVICE_ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "ISTIO_CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "PROXY_CONFIG", "value": json.dumps({"discoveryAddress": discovery, "proxyMetadata": v["proxyMetadata"]}) + "\n"},  # T:266-268
        {"name": "ISTIO_META_POD_PORTS", "value": "[\n" + ",".join(ports) + "\n]"},  # T:269-281
        {"name": "ISTIO_META_APP_CONTAINERS", "value": ",".join(app_containers)},  # T:282-283
        {"name": "GOMEMLIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
        {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "ISTIO_META_CLUSTER_ID", "value": v["clusterName"] or "Kubernetes"},  # T:296-297
        {"name": "ISTIO_META_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "ISTIO_META_INTERCEPTION_MODE", "value": _ann(meta, "sidecar.istio.io/interceptionMode", "REDIRECT")},
    ]
    if v["network"]:
        env.append({"name": "ISTIO_META_NETWORK", "value": v["network"]})  # T:304-307
    name = _deploy_name(pod)
    if name:
        env.append({"name": "ISTIO_META_WORKLOAD_NAME", "value": name})  # T:308-311
        ns = meta.get("namespace") or "default"
        env.append({"name": "ISTIO_META_OWNER", "value": f"kubernetes://apis/apps/v1/namespaces/{ns}/deployments/{name}"})  # T:312-315
    mesh_id = v["meshID"] or v["trustDomain"]
    if mesh_id:
        env.append({"name": "ISTIO_META_MESH_ID", "value": mesh_id})  # T:320-326
    if v["trustDomain"]:
        env.append({"name": "TRUST_DOMAIN", "value": v["trustDomain"]})  # T:327-330
    for k in sorted(v["proxyMetadata"]):
        env.append({"name": k, "value": str(v["proxyMetadata"][k])})  # T:337-340 (range over a map: sorted keys)
    return env


def _volumes(v: dict, gateway: bool) -> list[dict]:
    vols = [
        {"name": "workload-socket", "emptyDir": {}},  # T:450-451
        {"name": "credential-socket", "emptyDir": {}},  # T:452-453
        {"name": "workload-certs", "emptyDir": {}},  # T:459-460
        {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},  # T:468-470
        {"name": "istio-data", "emptyDir": {}},  # T:471-472
        {
            "name": "istio-podinfo",  # T:473-481
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                ]
            },
        },
    ]
    if v["jwtPolicy"] == "third-party-jwt":
        vols.append(
            {
                "name": "istio-token",  # T:482-490
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "istio-token", "expirationSeconds": 43200, "audience": v["tokenAud"]}}
                    ]
                },
            }
        )
    if v["pilotCertProvider"] == "istiod":
        vols.append({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}})  # T:491-495
    if v["pilotCertProvider"] == "kubernetes":
        vols.append({"name": "kube-ca-cert", "configMap": {"name": "kube-root-ca.crt"}})  # T:496-500
    return vols


def _mounts(v: dict, gateway: bool) -> list[dict]:
    m = [
        {"name": "workload-socket", "mountPath": "/var/run/secrets/workload-spiffe-uds"},  # T:397-398
        {"name": "credential-socket", "mountPath": "/var/run/secrets/credential-uds"},  # T:399-400
        {"name": "workload-certs", "mountPath": "/var/run/secrets/workload-spiffe-credentials"},  # T:406-407
    ]
    if v["pilotCertProvider"] == "istiod":
        m.append({"mountPath": "/var/run/secrets/istio", "name": "istiod-ca-cert"})  # T:409-412
    if v["pilotCertProvider"] == "kubernetes" and not gateway:
        m.append({"mountPath": "/var/run/secrets/istio/kubernetes", "name": "kube-ca-cert"})  # T:413-416
    m.append({"mountPath": "/var/lib/istio/data", "name": "istio-data"})  # T:417-418
    m.append({"mountPath": "/etc/istio/proxy", "name": "istio-envoy"})  # T:424-425
    if v["jwtPolicy"] == "third-party-jwt":
        m.append({"mountPath": "/var/run/secrets/tokens", "name": "istio-token"})  # T:426-429
    m.append({"name": "istio-podinfo", "mountPath": "/etc/istio/pod"})  # T:436-437
    return m


def render_template(pod: dict, revision: str, values: dict | None = None, template: str = "sidecar") -> dict:
    """The rendered template pod (what RunTemplate's ``templatePod`` is)."""
    v = {**DEFAULT_VALUES, **(values or {})}
    gateway = template == "gateway"
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    proxy_image = _ann(meta, "sidecar.istio.io/proxyImage", f"{v['hub']}/proxyv2:{v['tag']}")
    app_containers = [c["name"] for c in pod["spec"].get("containers") or [] if c["name"] != "istio-proxy"]
    deploy = _deploy_name(pod)
    t_labels = {}
    if not gateway:
        t_labels["security.istio.io/tlsMode"] = labels.get("security.istio.io/tlsMode") or "istio"  # T:32
    t_labels["service.istio.io/canonical-name"] = (  # T:36 / G:5
        labels.get("service.istio.io/canonical-name") or labels.get("app.kubernetes.io/name") or labels.get("app") or deploy
    )
    t_labels["service.istio.io/canonical-revision"] = (  # T:37 / G:6
        labels.get("service.istio.io/canonical-revision") or labels.get("app.kubernetes.io/version") or labels.get("version") or "latest"
    )
    t_ann = {"istio.io/rev": revision or "default"}  # T:39 / G:8
    if (not gateway and len(app_containers) >= 1) or (gateway and len(app_containers) == 1):  # T:40-47 / G:9-12
        if gateway or "kubectl.kubernetes.io/default-logs-container" not in annotations:
            t_ann["kubectl.kubernetes.io/default-logs-container"] = app_containers[0]
        if gateway or "kubectl.kubernetes.io/default-container" not in annotations:
            t_ann["kubectl.kubernetes.io/default-container"] = app_containers[0]
    status_port = _ann(meta, "status.sidecar.istio.io/port", v["statusPort"])
    exclude_inbound = ",".join(p for p in (status_port, _ann(meta, "traffic.sidecar.istio.io/excludeInboundPorts", v["excludeInboundPorts"])) if p and p != "0")
    if v["cni"] and not gateway:
        t_ann["sidecar.istio.io/interceptionMode"] = _ann(meta, "sidecar.istio.io/interceptionMode", "REDIRECT")  # T:52
        t_ann["traffic.sidecar.istio.io/excludeInboundPorts"] = exclude_inbound  # T:56
    proxy = {
        "name": "istio-proxy",
        "image": proxy_image,
        "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],  # T:198-201
        "args": [  # T:202-215 / G:26-39
            "proxy",
            "router" if gateway else "sidecar",
            "--domain",
            f"$(POD_NAMESPACE).svc.{v['clusterDomain']}",
            f"--proxyLogLevel={_ann(meta, 'sidecar.istio.io/logLevel', v['logLevel'])}",
            f"--proxyComponentLogLevel={_ann(meta, 'sidecar.istio.io/componentLogLevel', v['componentLogLevel'])}",
            f"--log_output_level={_ann(meta, 'sidecar.istio.io/agentLogLevel', v['loggingLevel'])}",
        ]
        + ([f"--stsPort={v['stsPort']}"] if v["stsPort"] else []),
        "env": _proxy_env(pod, revision, v, gateway),
        "readinessProbe": {  # T:346-354 / G:145-152
            "httpGet": {"path": "/healthz/ready", "port": 15021},
            "initialDelaySeconds": int(_ann(meta, "readiness.status.sidecar.istio.io/initialDelaySeconds", v["readinessInitialDelaySeconds"])),
            "periodSeconds": int(_ann(meta, "readiness.status.sidecar.istio.io/periodSeconds", v["readinessPeriodSeconds"])),
            "timeoutSeconds": 3,
            "failureThreshold": int(_ann(meta, "readiness.status.sidecar.istio.io/failureThreshold", v["readinessFailureThreshold"])),
        },
        "volumeMounts": _mounts(v, gateway),
    }
    if not gateway:
        proxy["securityContext"] = {  # T:370-392 (REDIRECT, no NET_BIND_SERVICE)
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsGroup": 1337,
            "runAsNonRoot": True,
            "runAsUser": 1337,
        }
    spec: dict = {"containers": [proxy], "volumes": _volumes(v, gateway)}
    if not gateway and _ann(meta, "sidecar.istio.io/interceptionMode", "REDIRECT") != "NONE":
        init = {  # T:70-159
            "name": "istio-validation" if v["cni"] else "istio-init",
            "image": proxy_image,
            "args": [
                "istio-iptables",
                "-p", "15001",
                "-z", "15006",
                "-u", "1337",
                "-m", _ann(meta, "sidecar.istio.io/interceptionMode", "REDIRECT"),
                "-i", _ann(meta, "traffic.sidecar.istio.io/includeOutboundIPRanges", v["includeIPRanges"]),
                "-x", _ann(meta, "traffic.sidecar.istio.io/excludeOutboundIPRanges", v["excludeIPRanges"]),
                "-b", _ann(meta, "traffic.sidecar.istio.io/includeInboundPorts", v["includeInboundPorts"]),
                "-d", "15090,15021" + ("," + exclude_inbound if exclude_inbound else ""),
                f"--log_output_level={_ann(meta, 'sidecar.istio.io/agentLogLevel', v['loggingLevel'])}",
            ]
            + (["--run-validation", "--skip-rule-apply"] if v["cni"] else []),
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "privileged": False,
                "capabilities": {"drop": ["ALL"]} if v["cni"] else {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                "readOnlyRootFilesystem": bool(v["cni"]),
                "runAsGroup": 1337 if v["cni"] else 0,
                "runAsNonRoot": bool(v["cni"]),
                "runAsUser": 1337 if v["cni"] else 0,
            },
        }
        if v["proxyMetadata"]:
            init["env"] = [{"name": k, "value": str(v["proxyMetadata"][k])} for k in sorted(v["proxyMetadata"])]  # T:128-134
        spec["initContainers"] = [init]
    return {"metadata": {"labels": t_labels, "annotations": t_ann}, "spec": spec}


def _merge_named(base: list[dict], overlay: list[dict]) -> list[dict]:
    """Strategic merge of lists keyed by ``name``: overlay fields win, new names appended."""
    out = [copy.deepcopy(x) for x in base]
    for item in overlay:
        for i, cur in enumerate(out):
            if cur.get("name") == item.get("name"):
                merged = copy.deepcopy(cur)
                for k, val in item.items():
                    if k in ("env", "volumeMounts", "ports") and isinstance(val, list) and isinstance(merged.get(k), list):
                        key = "mountPath" if k == "volumeMounts" else ("containerPort" if k == "ports" else "name")
                        merged[k] = _merge_keyed(merged[k], val, key)
                    else:
                        merged[k] = copy.deepcopy(val)
                out[i] = merged
                break
        else:
            out.append(copy.deepcopy(item))
    return out


def _merge_keyed(base: list[dict], overlay: list[dict], key: str) -> list[dict]:
    out = [copy.deepcopy(x) for x in base]
    for item in overlay:
        for i, cur in enumerate(out):
            if cur.get(key) == item.get(key):
                out[i] = {**cur, **copy.deepcopy(item)}
                break
        else:
            out.append(copy.deepcopy(item))
    return out


def _move(items: list[dict], name: str, last: bool) -> list[dict]:
    hit = [c for c in items if c.get("name") == name]
    rest = [c for c in items if c.get("name") != name]
    return rest + hit if last else hit + rest


def status_annotation(template_pod: dict, revision: str) -> str:
    """WH:388-413: names from the template pod, Go's json.Marshal field order, nil slices as null."""
    spec = template_pod["spec"]

    def names(key):
        items = spec.get(key) or []
        return [c["name"] for c in items] or None

    stat = {
        "initContainers": names("initContainers"),
        "containers": names("containers"),
        "volumes": names("volumes"),
        "imagePullSecrets": None,
        "revision": revision or "default",
    }
    return json.dumps(stat, separators=(",", ":"))


def injected_pod(pod: dict, revision: str, values: dict | None = None) -> dict:
    """The pod after injection (injectPod WH:436-468 before createPatch)."""
    meta = pod.setdefault("metadata", {})
    templates = [t.strip() for t in ((meta.get("annotations") or {}).get("inject.istio.io/templates") or "sidecar").split(",")]  # IG:457-468
    template = "gateway" if "gateway" in templates else "sidecar"
    tpl = render_template(pod, revision, values, template)
    final = copy.deepcopy(pod)
    fm = final.setdefault("metadata", {})
    fm["labels"] = {**(fm.get("labels") or {}), **tpl["metadata"]["labels"]}
    fm["annotations"] = {**(fm.get("annotations") or {}), **tpl["metadata"]["annotations"]}
    fs = final.setdefault("spec", {})
    for key in ("initContainers", "containers", "volumes"):
        if tpl["spec"].get(key):
            fs[key] = _merge_named(fs.get(key) or [], tpl["spec"][key])
    # WH:495-518: the user's own istio-proxy (e.g. a gateway's `image: auto`) wins, image auto dropped.
    overrides = []
    for c in pod.get("spec", {}).get("containers") or []:
        if any(t["name"] == c["name"] for t in tpl["spec"]["containers"]):
            overlay = copy.deepcopy(c)
            if overlay.get("image") == "auto":
                overlay["image"] = ""
            overrides.append(overlay)
            ov = {k: val for k, val in overlay.items() if val not in ("", None)}
            fs["containers"] = _merge_named(fs["containers"], [ov])
    if overrides:  # WH:543-553
        fm["annotations"]["proxy.istio.io/overrides"] = json.dumps({"containers": overrides}, separators=(",", ":"))
    fm["annotations"]["sidecar.istio.io/status"] = status_annotation(tpl, revision)  # WH:660-666
    fs["containers"] = _move(fs["containers"], "istio-proxy", last=True)  # WH:694-697
    if fs.get("initContainers"):
        fs["initContainers"] = _move(fs["initContainers"], "istio-validation", last=False)  # WH:711
        fs["initContainers"] = _move(fs["initContainers"], "istio-init", last=True)  # WH:713
    return final


def _esc(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def json_patch(old, new, path: str = "") -> list[dict]:
    """An RFC 6902 patch turning ``old`` into ``new`` (what WH:619-629's jsonpatch.CreatePatch yields)."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict] = []
        for k in old:
            if k not in new:
                ops.append({"op": "remove", "path": f"{path}/{_esc(k)}"})
        for k, v in new.items():
            if k not in old:
                ops.append({"op": "add", "path": f"{path}/{_esc(k)}", "value": v})
            else:
                ops += json_patch(old[k], v, f"{path}/{_esc(k)}")
        return ops
    if isinstance(old, list) and isinstance(new, list):
        if len(old) == len(new):
            ops = []
            for i, (a, b) in enumerate(zip(old, new)):
                ops += json_patch(a, b, f"{path}/{i}")
            return ops
        if len(new) > len(old) and all(a == b for a, b in zip(old, new)):
            return [{"op": "add", "path": f"{path}/-", "value": v} for v in new[len(old):]]
        return [{"op": "replace", "path": path, "value": new}]
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": path, "value": new}]


def apply_patch(doc, ops: list[dict]):
    """Minimal RFC 6902 apply (tests check that a patch reproduces the injected pod)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        if not parts:
            doc = copy.deepcopy(op["value"])
            continue
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if isinstance(parent, list):
            if op["op"] == "add":
                if last == "-":
                    parent.append(copy.deepcopy(op["value"]))
                else:
                    parent.insert(int(last), copy.deepcopy(op["value"]))
            elif op["op"] == "replace":
                parent[int(last)] = copy.deepcopy(op["value"])
            elif op["op"] == "remove":
                del parent[int(last)]
        else:
            if op["op"] in ("add", "replace"):
                parent[last] = copy.deepcopy(op["value"])
            elif op["op"] == "remove":
                del parent[last]
    return doc


def review_response(review: dict, revision: str, values: dict | None = None) -> dict:
    """AdmissionReview v1 (or v1beta1) in, AdmissionReview out, as WH:995-1060 ``inject``."""
    req = review.get("request") or {}
    uid = req.get("uid", "")
    api_version = review.get("apiVersion") or "admission.k8s.io/v1"
    resp: dict = {"uid": uid, "allowed": True}
    pod = req.get("object") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or req.get("namespace") or ""
    if pod.get("kind", "Pod") == "Pod" and pod.get("spec"):
        pod.setdefault("metadata", {})["namespace"] = ns  # WH:1011-1013
        if (pod.get("metadata") or {}).get("managedFields"):
            pod["metadata"]["managedFields"] = None
        if inject_required(pod, ns):
            final = injected_pod(copy.deepcopy(pod), revision, values)
            ops = json_patch(pod, final)
            if ops:
                import base64

                resp["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
                resp["patchType"] = "JSONPatch"
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": resp}
