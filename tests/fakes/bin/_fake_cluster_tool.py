"""The behaviour behind the fake ``kubectl`` and ``istioctl`` (test-only).

A cluster is a directory (env MESHCA_FAKE_CLUSTER), written by tests/fakes/trust_cluster.py:
  namespaces.json            {"kind": "NamespaceList", "items": [...]}
  pods.json                  {"kind": "PodList", "items": [...]}
  secrets/NS/NAME.json       Secret objects      configmaps/NS/NAME.json  ConfigMap objects
  dumps/NS/POD.json          the exact bytes istioctl prints (may be malformed on purpose)
  dumps/NS/POD.err           instead: istioctl fails with this stderr, exit 1
  dumps/NS/POD.delay         extra seconds before answering (a hung proxy)
  dumps/NS/POD.failtimes     fail this many calls first (a flaky port-forward)
  dumps/NS/POD.table         what ``istioctl proxy-config secret POD -n NS`` prints (the table)
  unreachable                kubectl answers like a dead API server
  forbidden                  kubectl refuses (Forbidden) every read of the resource named in it
  context                    the only --context that exists
Every call is appended to env MESHCA_FAKE_LOG as one JSON line {"tool", "argv"}; env
MESHCA_FAKE_DELAY adds a per-call delay (what a port-forward or an API round trip costs).
Only the exact command lines meshca uses are understood, plus those Google's
``migrate_ca check-root-cert`` makes (bench/check_bench.py runs it against these fakes; quoted
from anthos-service-mesh-packages 1.10.6-asm.2+config1 scripts/ca-migration/migrate_ca):
  istioctl                                                 (:17, a presence check: no cluster call, no delay)
  kubectl version                                          (:27, a presence check that reaches the server)
  kubectl get ns -o jsonpath={.items..metadata.name}       (:174)
  kubectl get pod -o jsonpath={.items..metadata.name} -n NS            (:155)
  kubectl get pod POD -n NS -o jsonpath=={.spec.containers.*.name}     (:158, sic: "=" is printed)
  istioctl pc secret POD -n NS                             (:110, the table)
  istioctl pc secret POD -n NS -o json                     (:43)
kubectl's jsonpath prints the matches of a ``..``/``*`` expression separated by one space, with
no trailing newline (k8s.io/client-go v0.30.14 util/jsonpath/jsonpath.go:146-193); text outside
the braces, such as the second ``=``, is printed as is. Anything else fails loudly.
"""

import os
import sys
import time

# json is imported only where a call must parse JSON: importing it compiles regular expressions
# and would double the fake's CPU cost per call (the benchmark reports that cost).


def _jstr(text):
    """A JSON string literal (what json.dumps gives for a str), without importing json."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _out(data):
    sys.stdout.buffer.write(data if isinstance(data, bytes) else data.encode())
    sys.stdout.flush()


def _fail(message, code=1):
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.exit(code)


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def _log(tool, argv):
    path = os.environ.get("MESHCA_FAKE_LOG")
    if not path:
        return
    line = ('{"tool": %s, "argv": [%s]}\n' % (_jstr(tool), ", ".join(_jstr(a) for a in argv))).encode("utf-8", "surrogateescape")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines of concurrent calls never interleave
    finally:
        os.close(fd)


def _globals(argv):
    flags = {}
    rest = list(argv)
    while rest and rest[0] in ("--kubeconfig", "--context"):
        if len(rest) < 2:
            _fail(f"error: flag needs an argument: {rest[0]}")
        flags[rest[0]] = rest[1]
        rest = rest[2:]
    return flags, rest


def _obj_path(root, kind, ns, name):
    return os.path.join(root, kind, ns, name + ".json")


def kubectl(root, rest):
    if os.path.exists(os.path.join(root, "unreachable")):
        _fail("The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?")
    forbidden = os.path.join(root, "forbidden")
    if os.path.exists(forbidden) and len(rest) > 1 and rest[1] == _read(forbidden).decode().strip():
        _fail(f'Error from server (Forbidden): {rest[1]} is forbidden: User "meshca" cannot list resource "{rest[1]}" in API group ""')
    if rest == ["get", "namespaces", "-o", "json"]:
        return _out(_read(os.path.join(root, "namespaces.json")))
    if rest == ["version"]:
        return _out("Client Version: v1.30.14\nKustomize Version: v5.0.4-0.20230601165947-6ce0bf390ce3\nServer Version: v1.30.14\n")
    if rest == ["get", "ns", "-o", "jsonpath={.items..metadata.name}"]:
        import json

        return _out(" ".join(i["metadata"]["name"] for i in json.loads(_read(os.path.join(root, "namespaces.json")))["items"]))
    if len(rest) == 6 and rest[:4] == ["get", "pod", "-o", "jsonpath={.items..metadata.name}"] and rest[4] == "-n":
        import json

        items = json.loads(_read(os.path.join(root, "pods.json")))["items"]
        return _out(" ".join(p["metadata"]["name"] for p in items if p["metadata"]["namespace"] == rest[5]))
    if len(rest) == 7 and rest[:2] == ["get", "pod"] and rest[3] == "-n" and rest[5:] == ["-o", "jsonpath=={.spec.containers.*.name}"]:
        import json

        items = json.loads(_read(os.path.join(root, "pods.json")))["items"]
        pod = next((p for p in items if p["metadata"]["namespace"] == rest[4] and p["metadata"]["name"] == rest[2]), None)
        if pod is None:
            _fail(f'Error from server (NotFound): pods "{rest[2]}" not found')
        return _out("=" + " ".join(c["name"] for c in (pod.get("spec") or {}).get("containers") or []))
    if rest == ["get", "pods", "-A", "-o", "json"]:
        return _out(_read(os.path.join(root, "pods.json")))
    if len(rest) == 6 and rest[:3] == ["get", "pods", "-n"] and rest[4:] == ["-o", "json"]:
        import json

        doc = json.loads(_read(os.path.join(root, "pods.json")))
        doc["items"] = [p for p in doc["items"] if p["metadata"]["namespace"] == rest[3]]
        return _out(json.dumps(doc))
    if len(rest) == 7 and rest[0] == "get" and rest[1] in ("secret", "configmap") and rest[3] == "-n" and rest[5:] == ["-o", "json"]:
        kind = "secrets" if rest[1] == "secret" else "configmaps"
        path = _obj_path(root, kind, rest[4], rest[2])
        if not os.path.exists(path):
            _fail(f'Error from server (NotFound): {kind} "{rest[2]}" not found')
        return _out(_read(path))
    _fail(f"error: the fake kubectl does not understand: {' '.join(rest)}")


def istioctl(root, rest):
    if len(rest) == 5 and rest[:2] == ["pc", "secret"] and rest[3] == "-n":
        table = os.path.join(root, "dumps", rest[4], rest[2] + ".table")
        if not os.path.exists(table):
            _fail(f"Error: the fake cluster has no secret table for {rest[2]}.{rest[4]}")
        return _out(_read(table))
    if len(rest) == 7 and rest[:2] in (["proxy-config", "secret"], ["pc", "secret"]) and rest[3] == "-n" and rest[5:] == ["-o", "json"]:
        pod, ns = rest[2], rest[4]
        base = os.path.join(root, "dumps", ns, pod)
        if os.path.exists(base + ".delay"):
            time.sleep(float(_read(base + ".delay")))
        if os.path.exists(base + ".failtimes"):
            left = int(_read(base + ".failtimes"))
            if left > 0:
                with open(base + ".failtimes", "w") as fh:
                    fh.write(str(left - 1))
                _fail(f"Error: failed to get config dump from {pod}.{ns}: port-forward: lost connection to pod")
        if os.path.exists(base + ".err"):
            _fail(_read(base + ".err").decode())
        if not os.path.exists(base + ".json"):
            _fail(f'Error: failed to get config dump from {pod}.{ns}: pods "{pod}" not found')
        return _out(_read(base + ".json"))
    _fail(f"Error: the fake istioctl does not understand: {' '.join(rest)}")


def main(tool):
    argv = sys.argv[1:]
    _log(tool, argv)
    if tool == "istioctl" and not argv:
        return _out("Istio configuration command line utility (meshca's fake)\n")  # help: no cluster call
    delay = float(os.environ.get("MESHCA_FAKE_DELAY") or 0)
    if delay:
        time.sleep(delay)
    root = os.environ.get("MESHCA_FAKE_CLUSTER")
    if not root:
        _fail("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
    flags, rest = _globals(argv)
    ctx_file = os.path.join(root, "context")
    if "--context" in flags and os.path.exists(ctx_file) and _read(ctx_file).decode().strip() != flags["--context"]:
        _fail(f'error: context "{flags["--context"]}" does not exist')
    (kubectl if tool == "kubectl" else istioctl)(root, rest)
