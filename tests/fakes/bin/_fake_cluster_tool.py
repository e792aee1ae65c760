"""The behaviour behind the fake ``kubectl`` and ``istioctl`` (test-only).

A cluster is a directory (env MESHCA_FAKE_CLUSTER), written by tests/fakes/trust_cluster.py:
  namespaces.json            {"kind": "NamespaceList", "items": [...]}
  pods.json                  {"kind": "PodList", "items": [...]}
  secrets/NS/NAME.json       Secret objects      configmaps/NS/NAME.json  ConfigMap objects
  dumps/NS/POD.json          the exact bytes istioctl prints (may be malformed on purpose)
  dumps/NS/POD.err           instead: istioctl fails with this stderr, exit 1
  dumps/NS/POD.delay         extra seconds before answering (a hung proxy)
  dumps/NS/POD.failtimes     fail this many calls first (a flaky port-forward)
  unreachable                kubectl answers like a dead API server
  forbidden                  kubectl refuses (Forbidden) every read of the resource named in it
  context                    the only --context that exists
Every call is appended to env MESHCA_FAKE_LOG as one JSON line {"tool", "argv"}; env
MESHCA_FAKE_DELAY adds a per-call delay (what a port-forward or an API round trip costs).
Only the exact command lines meshca uses are understood; anything else fails loudly.
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
    if len(rest) == 7 and rest[:2] == ["proxy-config", "secret"] and rest[3] == "-n" and rest[5:] == ["-o", "json"]:
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
