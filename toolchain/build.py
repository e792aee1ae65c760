#!/usr/bin/env python3
"""Build the real toolchain (Pulumi CLI, kubernetes provider plugin, etcd,
kube-apiserver, kube-controller-manager, kubectl, kwok) from the Go module
proxy at the versions pinned in toolchain/pins.json.

Output: ${XDG_CACHE_HOME:-$HOME/.cache}/meshca/toolchain/<sha256(pins.json)[:16]>/
    bin/          the binaries
    pulumi-home/  a PULUMI_HOME with the provider plugin installed offline
    work/         build dirs (wrapper module copies, the provider's module copy)
    logs/         one log per component, timings.json

Usage:
    toolchain/build.py               build what is missing (no-op when complete)
    toolchain/build.py --print-bin   print the bin dir and exit (builds nothing)
    toolchain/build.py --print-home  print the PULUMI_HOME dir and exit
    toolchain/build.py --env         print `export ...` lines for PATH, PULUMI_HOME, ...
    toolchain/build.py --only kubernetes,etcd   build just these components
    toolchain/build.py --check       exit 0 if everything is built, 1 otherwise

Safe to interrupt: every component is built into a per-run temp dir and each
finished binary is renamed into bin/; a second run under a lock builds only
what is missing. Python 3 stdlib only.
"""
import argparse
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PINS_PATH = os.path.join(HERE, "pins.json")


def load_pins():
    with open(PINS_PATH, "rb") as f:
        raw = f.read()
    return json.loads(raw), hashlib.sha256(raw).hexdigest()[:16]


def cache_base(pin_hash):
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "meshca", "toolchain", pin_hash)


class Layout:
    def __init__(self, pins, pin_hash):
        self.pins = pins
        self.base = cache_base(pin_hash)
        self.bin = os.path.join(self.base, "bin")
        self.home = os.path.join(self.base, "pulumi-home")
        self.work = os.path.join(self.base, "work")
        self.logs = os.path.join(self.base, "logs")

    def plugin_dir(self):
        kp = self.pins["kubernetes_provider"]
        return os.path.join(self.home, "plugins", "resource-%s-v%s" % (kp["plugin"], kp["release"]))


# component name -> binaries it puts in bin/
def component_outputs(pins):
    return {
        "pulumi": ["pulumi"],
        "pulumi_python_scripts": sorted(pins["pulumi_python_scripts"]["files"].values()),
        "kubernetes": list(pins["kubernetes"]["commands"]),
        "etcd": ["etcd"],
        "kwok": ["kwok"],
        "kubernetes_provider": ["pulumi-resource-kubernetes"],
    }


ORDER = ["pulumi", "pulumi_python_scripts", "kubernetes", "etcd", "kwok", "kubernetes_provider"]


def missing_outputs(lay, comp):
    return [b for b in component_outputs(lay.pins)[comp]
            if not os.access(os.path.join(lay.bin, b), os.X_OK)]


def plugin_installed(lay):
    d = lay.plugin_dir()
    return os.path.isdir(d) and not os.path.exists(d + ".partial")


def complete(lay):
    return all(not missing_outputs(lay, c) for c in ORDER) and plugin_installed(lay)


def env_lines(lay):
    return [
        'export PATH="%s:$PATH"' % lay.bin,
        'export PULUMI_HOME="%s"' % lay.home,
        "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
        "export PULUMI_SKIP_UPDATE_CHECK=true",
    ]


def pulumi_env(lay):
    env = dict(os.environ)
    env["PULUMI_HOME"] = lay.home
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env["PATH"] = lay.bin + os.pathsep + env.get("PATH", "")
    return env


# --------------------------------------------------------------------------
# building


class BuildError(Exception):
    pass


class Builder:
    def __init__(self, lay, tmpbin, verbose):
        self.lay = lay
        self.pins = lay.pins
        self.tmpbin = tmpbin
        self.verbose = verbose
        self.log = None

    def go_env(self, extra=None):
        env = dict(os.environ)
        # -mod=mod: the wrapper modules' go.sum may be completed on the fly
        # (checksums still verified against the checksum database).
        env["GOFLAGS"] = "-mod=mod -buildvcs=false"
        env["GOTOOLCHAIN"] = "local"
        env.setdefault("CGO_ENABLED", "0")
        if extra:
            env.update(extra)
        return env

    def run(self, args, cwd, extra_env=None, capture=False):
        line = "+ (cd %s && %s%s)\n" % (
            cwd, "".join("%s=%s " % kv for kv in sorted((extra_env or {}).items())),
            " ".join(args))
        self.log.write(line)
        self.log.flush()
        if self.verbose:
            sys.stderr.write(line)
        p = subprocess.run(args, cwd=cwd, env=self.go_env(extra_env),
                           stdout=subprocess.PIPE if capture else self.log,
                           stderr=self.log, text=True)
        if p.returncode != 0:
            raise BuildError("%s exited %d" % (" ".join(args[:3]), p.returncode))
        return p.stdout if capture else None

    def module_dir(self, module, version):
        out = self.run(["go", "mod", "download", "-json", "%s@%s" % (module, version)],
                       cwd=self.lay.work, capture=True)
        return json.loads(out)["Dir"]

    def wrapper(self, name, must_contain):
        """Copy toolchain/<name>/ (go.mod, go.sum, *.go) to work/<name>/."""
        src = os.path.join(HERE, name)
        with open(os.path.join(src, "go.mod")) as f:
            gomod = f.read()
        for s in must_contain:
            if s not in gomod:
                raise BuildError("toolchain/%s/go.mod does not mention %r from pins.json" % (name, s))
        dst = os.path.join(self.lay.work, name)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        return dst

    def build_pulumi(self):
        p = self.pins["pulumi"]
        d = self.wrapper("pulumi", [p["module"] + " " + p["version"]])
        ld = "-s -w -X %s=%s" % (p["version_var"], p["version"])
        self.run(["go", "build", "-trimpath", "-ldflags", ld,
                  "-o", os.path.join(self.tmpbin, "pulumi"), p["package"]], cwd=d)

    def build_pulumi_python_scripts(self):
        p = self.pins["pulumi_python_scripts"]
        mdir = self.module_dir(p["module"], p["version"])
        for rel, name in sorted(p["files"].items()):
            dst = os.path.join(self.tmpbin, name)
            shutil.copyfile(os.path.join(mdir, rel), dst)
            os.chmod(dst, 0o755)

    def build_kubernetes(self):
        k = self.pins["kubernetes"]
        d = self.wrapper("kubernetes", [k["module"] + " " + k["version"], k["staging_version"]])
        v = k["version"]
        major, minor = v.lstrip("v").split(".")[:2]
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        ld = ["-s", "-w"]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            for var, val in (("gitVersion", v), ("gitMajor", major), ("gitMinor", minor),
                             ("gitTreeState", "archive"), ("buildDate", date)):
                ld.append("-X %s.%s=%s" % (pkg, var, val))
        pkgs = ["%s/cmd/%s" % (k["module"], c) for c in k["commands"]]
        # one invocation: the three commands share most of their compile work
        self.run(["go", "build", "-trimpath", "-ldflags", " ".join(ld),
                  "-o", self.tmpbin + os.sep] + pkgs, cwd=d)

    def build_etcd(self):
        e = self.pins["etcd"]
        d = self.wrapper("etcd", [e["module"] + " " + e["version"]])
        self.run(["go", "build", "-trimpath", "-ldflags", "-s -w",
                  "-o", os.path.join(self.tmpbin, "etcd"), "."], cwd=d)

    def build_kwok(self):
        k = self.pins["kwok"]
        d = self.wrapper("kwok", [k["module"] + " " + k["version"]])
        self.run(["go", "build", "-trimpath", "-ldflags", "-s -w",
                  "-o", os.path.join(self.tmpbin, "kwok"), k["module"] + "/cmd/kwok"], cwd=d)

    def build_kubernetes_provider(self):
        kp = self.pins["kubernetes_provider"]
        mdir = self.module_dir(kp["module"], kp["version"])
        # The module as published lacks the go:embed'ed schema-embed.json; it is
        # produced by `go generate` (go run ./generate.go), so build from a
        # writable copy of the module (in the cache, never in the clone).
        src = os.path.join(self.lay.work, "kubernetes_provider", "src")
        shutil.rmtree(os.path.dirname(src), ignore_errors=True)
        shutil.copytree(mdir, src)
        for root, dirs, files in os.walk(src):
            for n in dirs + files:
                fp = os.path.join(root, n)
                os.chmod(fp, os.stat(fp).st_mode | stat.S_IWUSR)
        # Its only replace is relative (sdk/v4 => ../sdk): point it at a
        # published sdk/v4 instead (see pins.json sdk_replace).
        sdk_mod, sdk_ver = kp["sdk_replace"].split("@")
        self.run(["go", "mod", "edit", "-replace", "%s=%s@%s" % (sdk_mod, sdk_mod, sdk_ver)], cwd=src)
        self.run(["go", "generate", "./" + kp["package_dir"]], cwd=src,
                 extra_env={"VERSION": kp["release"]})
        ld = "-s -w -X %s=%s" % (kp["version_var"], kp["release"])
        self.run(["go", "build", "-trimpath", "-ldflags", ld,
                  "-o", os.path.join(self.tmpbin, "pulumi-resource-kubernetes"),
                  "./" + kp["package_dir"]], cwd=src)


def install_plugin(lay, log):
    kp = lay.pins["kubernetes_provider"]
    os.makedirs(lay.home, exist_ok=True)
    cmd = [os.path.join(lay.bin, "pulumi"), "plugin", "install", "resource", kp["plugin"],
           kp["release"], "--file", os.path.join(lay.bin, "pulumi-resource-kubernetes")]
    log.write("+ PULUMI_HOME=%s %s\n" % (lay.home, " ".join(cmd)))
    log.flush()
    p = subprocess.run(cmd, env=pulumi_env(lay), stdout=log, stderr=log)
    if p.returncode != 0:
        raise BuildError("pulumi plugin install exited %d" % p.returncode)


def go_ok(pins):
    try:
        v = subprocess.run(["go", "env", "GOVERSION"], stdout=subprocess.PIPE, text=True,
                           check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("toolchain: no usable `go` on PATH (%s)" % e)
    have = tuple(int(x) for x in v.lstrip("go").split(".")[:2])
    want = tuple(int(x) for x in pins["go_min"].split(".")[:2])
    if have < want:
        sys.exit("toolchain: %s is older than go%s" % (v, pins["go_min"]))
    return v


def build(lay, only, verbose):
    for d in (lay.bin, lay.work, lay.logs):
        os.makedirs(d, exist_ok=True)
    lock = open(os.path.join(lay.base, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run waits, then finds the work done
    goversion = go_ok(lay.pins)
    tmpbin = os.path.join(lay.base, "tmp-%d" % os.getpid(), "bin")
    os.makedirs(tmpbin)
    timings, failed = {}, []
    t_all = time.time()
    try:
        for comp in ORDER:
            if only and comp not in only:
                continue
            if not missing_outputs(lay, comp):
                continue
            b = Builder(lay, tmpbin, verbose)
            logpath = os.path.join(lay.logs, comp + ".log")
            t0 = time.time()
            print("toolchain: building %s ..." % comp, file=sys.stderr, flush=True)
            with open(logpath, "w") as b.log:
                try:
                    getattr(b, "build_" + comp)()
                    for name in component_outputs(lay.pins)[comp]:
                        os.replace(os.path.join(tmpbin, name), os.path.join(lay.bin, name))
                    ok = True
                except (BuildError, OSError) as e:
                    b.log.write("FAILED: %s\n" % e)
                    ok = False
            dt = time.time() - t0
            timings[comp] = round(dt, 1)
            print("toolchain: %s %s in %.0fs (log: %s)" % (comp, "built" if ok else "FAILED", dt, logpath),
                  file=sys.stderr, flush=True)
            if not ok:
                failed.append(comp)
                with open(logpath) as f:
                    sys.stderr.write("".join(f.readlines()[-25:]))
        if not plugin_installed(lay) and not missing_outputs(lay, "pulumi") \
                and not missing_outputs(lay, "kubernetes_provider"):
            t0 = time.time()
            logpath = os.path.join(lay.logs, "plugin_install.log")
            with open(logpath, "w") as log:
                try:
                    install_plugin(lay, log)
                except BuildError as e:
                    failed.append("plugin_install")
                    print("toolchain: %s (log: %s)" % (e, logpath), file=sys.stderr)
            timings["plugin_install"] = round(time.time() - t0, 1)
    finally:
        shutil.rmtree(os.path.dirname(tmpbin), ignore_errors=True)
    if timings:
        timings["total"] = round(time.time() - t_all, 1)
        rec = {"finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "go": goversion, "seconds": timings, "failed": failed}
        with open(os.path.join(lay.logs, "timings.json"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        print("toolchain: timings %s" % json.dumps(timings), file=sys.stderr)
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--print-bin", action="store_true")
    ap.add_argument("--print-home", action="store_true")
    ap.add_argument("--env", action="store_true", help="print export lines")
    ap.add_argument("--check", action="store_true", help="exit 0 iff everything is built")
    ap.add_argument("--only", default="", help="comma-separated components: " + ",".join(ORDER))
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    pins, pin_hash = load_pins()
    lay = Layout(pins, pin_hash)
    if a.print_bin:
        print(lay.bin)
        return 0
    if a.print_home:
        print(lay.home)
        return 0
    if a.env:
        print("\n".join(env_lines(lay)))
        return 0
    if a.check:
        return 0 if complete(lay) else 1
    only = set(x for x in a.only.split(",") if x)
    bad = only - set(ORDER)
    if bad:
        ap.error("unknown component(s): %s" % ", ".join(sorted(bad)))
    if not only and complete(lay):
        print(lay.bin)
        return 0
    failed = build(lay, only, a.verbose)
    print(lay.bin)
    if failed:
        print("toolchain: FAILED: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
