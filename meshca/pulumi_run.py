"""One ``pulumi preview`` or ``pulumi up`` of the project through Pulumi's Automation API, for ``meshca up``.

    python -m meshca.pulumi_run --project-dir D --stack S --engine local|inline [--policy-pack policy] preview|up

``meshca up`` runs this once per preview and per up, in a child process (each run gets a fresh
interpreter: the program's module state and the SDK's settings never carry over from one
position to the next). Both engines drive the real ``pulumi`` CLI from PATH (a
``LocalWorkspace`` on the project directory; PULUMI_HOME, the backend and the passphrase come
from the environment):

- ``local``: the project's own program (``Pulumi.yaml``'s ``runtime: python``), started by the
  CLI through ``pulumi-language-python``, and the policy pack directory as given. This is a
  real installation's path.
- ``inline``: for a CLI without ``pulumi-language-python`` (this repository's toolchain cannot
  build it, toolchain/README.md). The Automation API's inline mode: the Python SDK serves the
  language runtime itself and the CLI runs the program's ``__main__.py`` in this process
  (pulumi/automation/_local_workspace.py ``create_stack(..., program=...)``; the same as
  testinfra/pulumi_inline.py). A pack directory runs only through the language host (pulumi
  v3.274.1 pkg/resource/plugin/analyzer_plugin.go ``NewPolicyAnalyzer``), but a ``--policy-pack``
  that is an executable file is launched directly with the engine address as its argument; so
  the pack is handed over as a two-line script that runs the SDK's ``python -m pulumi.policy
  ENGINE PACK_DIR`` (pulumi 3.272.0 pulumi/policy/__main__.py) with this interpreter.

A preview runs with ``PULUMI_SKIP_CHECKPOINTS=true`` unless the caller set it (``preview_environment``):
the CLI gives a preview a snapshot manager whose persister discards every write, yet by default it
serializes and integrity-checks the WHOLE in-memory state on every step before discarding it, so a
preview's cost grows with the square of the resources it plans (measured: BENCHMARKS.md "The route at
scale"). Skipping checkpoints changes nothing a preview shows or keeps. An ``up`` keeps its
checkpoints: they are what makes a completed step stay completed after a crash.

``up`` is the Automation API's ``Stack.up``: ``pulumi up --yes --skip-preview`` (its own
preview is ``meshca up``'s separate preview run). Output: the CLI's lines as they come, and one
line per engine event the progress display needs, prefixed ``EVENT_PREFIX`` (JSON). Exit 0 ok,
1 when the command failed, 3 when the stack cannot be selected.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shlex
import shutil
import sys
import tempfile
import threading
from pathlib import Path

EVENT_PREFIX = "\x1emeshca-event "
GATE_TYPE = "pulumi-python:dynamic/meshca:TrustGate"
GUARD_TYPE = "pulumi-python:dynamic/meshca:PhaseGuard"


def language_host() -> str | None:
    return shutil.which("pulumi-language-python")


def default_engine() -> str:
    """``local`` when a Python language host is on PATH, else ``inline``."""
    return "local" if language_host() else "inline"


def _event_record(event) -> dict | None:
    """The few fields the progress display reads."""
    for kind in ("resource_pre_event", "res_outputs_event", "res_op_failed_event"):
        ev = getattr(event, kind, None)
        if ev is not None:
            meta = ev.metadata
            rec = {"kind": kind, "op": str(getattr(meta.op, "value", meta.op)), "urn": meta.urn, "type": meta.type}
            if kind == "res_outputs_event" and meta.type == GATE_TYPE and meta.new is not None:
                outs = meta.new.outputs or {}
                rec["passed"] = outs.get("passed")
            return rec
    if getattr(event, "diagnostic_event", None) is not None:
        d = event.diagnostic_event
        if d.severity in ("error", "warning"):
            return {"kind": "diagnostic", "severity": d.severity, "urn": d.urn, "message": d.message}
    if getattr(event, "policy_event", None) is not None:
        p = event.policy_event
        return {"kind": "policy", "level": p.enforcement_level, "policy": p.policy_name, "urn": p.resource_urn, "message": p.message}
    if getattr(event, "summary_event", None) is not None:
        s = event.summary_event
        return {"kind": "summary", "changes": {str(getattr(k, "value", k)): v for k, v in (s.resource_changes or {}).items()},
                "policyPacks": dict(s.policy_packs or {})}
    return None


# pulumi v3.274.1: pkg/backend/diy/backend.go:1385-1394 and pkg/backend/httpstate/backend.go:2280-2288
# give a preview a SnapshotManager with a DiscardPersister; pkg/backend/snapshot.go:1017-1046 (the default
# service loop) runs saveSnapshot (:911-930: Deployment(), :886, serializes every resource, then
# snapshot.VerifyIntegrity) on every mutation; with SkipCheckpoints (sdk/go/common/env/env.go:50,
# snapshot.go:1093) the unsafe loop (:1051-1062) saves once, at the end, to the same discarding persister.
PREVIEW_ENVIRONMENT = {"PULUMI_SKIP_CHECKPOINTS": "true"}


def preview_environment(environ) -> dict:
    """The variables a preview adds to ``environ``: PREVIEW_ENVIRONMENT, where the caller set none."""
    return {k: v for k, v in PREVIEW_ENVIRONMENT.items() if k not in environ}


def analyzer_script(pack_dir: Path, where: Path) -> Path:
    """An executable ``--policy-pack`` that serves ``pack_dir`` with this interpreter."""
    script = where / "meshca-policy-pack"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -u -m pulumi.policy \"$1\" {shlex.quote(str(pack_dir))}\n")
    script.chmod(0o755)
    return script


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m meshca.pulumi_run")
    ap.add_argument("--project-dir", type=Path, required=True)
    ap.add_argument("--stack", required=True)
    ap.add_argument("--engine", choices=("local", "inline"), default=None)
    ap.add_argument("--policy-pack", default=None)
    ap.add_argument("command", choices=("preview", "up"))
    args = ap.parse_args(argv)

    from pulumi import automation as auto

    work_dir = args.project_dir.resolve()
    engine = args.engine or default_engine()
    lock = threading.Lock()

    def out(line: str) -> None:
        with lock:
            print(line, end="" if line.endswith("\n") else "\n", flush=True)

    def on_event(event) -> None:
        rec = _event_record(event)
        if rec is not None:
            with lock:
                print(EVENT_PREFIX + json.dumps(rec, default=str), flush=True)

    opts = auto.LocalWorkspaceOptions(work_dir=str(work_dir), pulumi_command=auto.PulumiCommand(skip_version_check=True))
    tmp = Path(tempfile.mkdtemp(prefix="meshca-up-"))
    try:
        try:
            if engine == "inline":
                main_py = work_dir / "__main__.py"
                if str(work_dir) not in sys.path:
                    sys.path.insert(0, str(work_dir))
                os.chdir(work_dir)

                def program() -> None:
                    runpy.run_path(str(main_py), run_name="__main__")

                import yaml

                project = yaml.safe_load((work_dir / "Pulumi.yaml").read_text())["name"]
                stack = auto.select_stack(args.stack, project_name=project, program=program, opts=opts)
            else:
                stack = auto.select_stack(args.stack, work_dir=str(work_dir), opts=opts)
        except (auto.StackNotFoundError, auto.CommandError) as exc:
            print(f"cannot select stack {args.stack}: {' '.join(str(exc).split())[-400:]}", file=sys.stderr, flush=True)
            return 3
        packs = None
        if args.policy_pack:
            pack = (work_dir / args.policy_pack).resolve()
            packs = [str(analyzer_script(pack, tmp) if engine == "inline" else pack)]
        if args.command == "preview":
            os.environ.update(preview_environment(os.environ))  # the CLI inherits this process's environment
        try:
            if args.command == "preview":
                stack.preview(policy_packs=packs, on_output=out, on_event=on_event, color="never")
            else:
                stack.up(policy_packs=packs, on_output=out, on_event=on_event, color="never")
        except auto.CommandError as exc:
            print(f"pulumi {args.command} failed:\n{exc}", file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
