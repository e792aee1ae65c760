"""Compare meshca rehearse --json between main and a branch, ignoring timings and key fingerprints."""
import json, re, subprocess, sys
MAIN = "/work/main/.venv/bin/meshca"
BR = sys.argv[1] if len(sys.argv) > 1 else "/work/wt-reh/.venv/bin/meshca"
CASES = [["--clusters", "3", "--namespaces", "20", "--workloads", "3"], ["--clusters", "2", "--namespaces", "40", "--workloads", "2"]]
TMP = re.compile(r"/tmp/meshca-rehearse-[a-z0-9_]+")
FP = re.compile(r"([0-9A-F]{2}:){7}[0-9A-F]{2}\.\.\.|([0-9A-F]{2}:){31}[0-9A-F]{2}|\b[0-9a-f]{64}\b")
def norm(o):
    if isinstance(o, dict):
        return {k: norm(v) for k, v in o.items() if not k.endswith("Seconds")}
    if isinstance(o, list):
        return [norm(v) for v in o]
    if isinstance(o, str):
        return TMP.sub("/tmp/meshca-rehearse-<TMP>", FP.sub("<FP>", o))
    return o
ok = True
for extra in CASES + [c + ["--scenario", s] for s in sys.argv[2:] for c in CASES[:1]]:
    docs = []
    for exe in (MAIN, BR):
        p = subprocess.run([exe, "rehearse", *extra, "--json", "--quiet"], capture_output=True, text=True)
        docs.append((p.returncode, norm(json.loads(p.stdout)) if p.stdout.strip() else p.stderr))
    same = docs[0] == docs[1]
    ok &= same
    print(" ".join(extra), "rc", docs[0][0], docs[1][0], "IDENTICAL" if same else "DIFFERENT")
    if not same:
        a = json.dumps(docs[0][1], indent=1).splitlines(); b = json.dumps(docs[1][1], indent=1).splitlines()
        import difflib
        print("\n".join(list(difflib.unified_diff(a, b, lineterm=""))[:60]))
sys.exit(0 if ok else 1)
