"""The ``meshca`` command: plan, check, rehearse, promote, certs, restart.

Every usage or input error is one coded line on stderr,
``<Level> MCA#### <subject>: <problem>; fix: <fix>``, and exit 2, never a traceback
(MESHCA_DEBUG=1 shows the traceback of an internal error). With ``--json`` the same errors go
to stdout as ``{"ok": false, "errors": [...]}`` (still exit 2), so a script reads one document.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import traceback
from pathlib import Path

from .errors import MeshcaError, MeshcaErrors

# Each module contributes subcommands through register(subparsers). Order is help order.
COMMAND_MODULES = [
    "meshca.cli",  # plan
    "meshca.operate",  # advance, up (move the stack file along the route; up runs pulumi)
    "meshca.restart",  # restart (the restart step's helper)
    "meshca.preflight",  # preflight (a step's preconditions on the cluster)
    "meshca.meshconfig",  # overlay / mesh-config (REV2's explicit Citadel root)
    "meshca.webhooks",  # webhooks strays / verify (the default revision tag, A5 and B4)
    "meshca.gateway",  # gateway clone / ready (the canary gateway, A4 and before A5)
    "meshca.trust.cli",  # check (the trust gates)
    "meshca.sim.cli",  # rehearse (the simulated mesh)
    "meshca.promote",  # promote (copy a finished position to the next stack)
    "meshca.certs_cli",  # certs verify (pre-flight of the four CA files)
    "meshca.toolversion",  # tool-version (the verify-asmcli step)
    "meshca.discover",  # discover (a stack file from the live clusters)
    "meshca.doctor",  # doctor (every prerequisite, one line each)
    "meshca.status",  # status (the live mesh against the stack file)
    "meshca.restoreca",  # restore-ca (break-glass restore of the phase C backups)
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one coded line (MCA0901) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise MeshcaErrors([MeshcaError("UsageError", self.prog, problem=message, usage=" ".join(self.format_usage().split())[7:])])


def project_dir_default() -> Path:
    """The directory with Pulumi.yaml: the current directory or one of its parents."""
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").exists():
            return candidate
    return here


def add_stack_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--stack", help="stack name: reads Pulumi.NAME.yaml in the project directory")
    group.add_argument("--config", type=Path, help="path of a Pulumi.NAME.yaml (Pulumi.yaml must be beside it)")
    parser.add_argument("--project-dir", type=Path, default=None, help="project directory for --stack (default: where Pulumi.yaml is)")


def load_config_from_args(args: argparse.Namespace):
    from .config import load_stack, load_stack_file

    if getattr(args, "config", None):
        return load_stack_file(args.config)
    return load_stack(args.project_dir or project_dir_default(), args.stack)


# ----------------------------------------------------------------------------- plan


def _shell_line(step) -> str:
    from .commands import KUBECONFIG_REF, shell_join

    # The operational environment the Command sets (KUBECONFIG, ...), as a shell prefix; a
    # subshell with export where the argv itself expands $KUBECONFIG (a prefix assignment is
    # not visible to the expansions of its own command line).
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in step.env.items())
    if env and KUBECONFIG_REF in step.argv:
        line = f"(export {env}; {shell_join(step.argv)})"
    else:
        line = (env + " " if env else "") + shell_join(step.argv)
    if step.stdin is None:
        return line
    if step.stdin == "y\n":
        return f"printf 'y\\n' | {line}"
    return f"{line} <<'EOF'\n{step.stdin.rstrip()}\nEOF"


def _yaml_scalar(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def plan_preview(plan, marks=None) -> dict:
    """What `pulumi up` of the stack's position does against the previous position (the marks
    of plan.step_marks), the edit that reaches the next position and the commands to run.
    The JSON form; ``_plan_text`` prints the same."""
    from . import plan as planmod

    c = plan.config
    previous = planmod.previous_plan(plan)
    marks = marks if marks is not None else planmod.step_marks(plan, previous)
    dropped = planmod.dropped_steps(plan, previous)
    counts = {"new": 0, "changed": 0, "unchanged": 0, "dropped": sum(len(v) for v in dropped.values())}
    names = {planmod.ADD: "new", planmod.CHANGE: "changed", planmod.SAME: "unchanged"}
    for cluster_marks in marks.values():
        for mark, _ in cluster_marks:
            counts[names[mark]] += 1
    out: dict = {
        "position": None,
        "previous": None,
        "marks": {cluster: {s.id: names[m] for m, s in ms} for cluster, ms in marks.items()},
        "dropped": {cluster: [s.id for s in steps] for cluster, steps in dropped.items()},
        "summary": counts,
        "commands": [f"pulumi preview --stack {c.stack} --policy-pack policy", f"pulumi up --stack {c.stack} --policy-pack policy"],
        "next": None,
        "complete": False,
    }
    if plan.position is None:
        return out
    here = plan.route[plan.position]
    out["position"] = {"index": here.index, "ref": planmod.position_ref(here), "name": planmod.position_name(here), "label": here.label}
    if previous is not None:
        prev = previous.route[previous.position] if previous.position is not None else None
        if prev is not None:
            out["previous"] = {"index": prev.index, "ref": planmod.position_ref(prev), "name": planmod.position_name(prev)}
    if c.rollback or here.index + 1 < len(plan.route):
        nxt = planmod.return_position(plan) if c.rollback else plan.route[here.index + 1]
        out["next"] = {
            "index": nxt.index,
            "ref": planmod.position_ref(nxt),
            "name": planmod.position_name(nxt),
            "label": nxt.label,
            "file": Path(c.source).name if c.source else f"Pulumi.{c.stack}.yaml",
            "edit": [{"key": k, "from": a, "to": b} for k, a, b in planmod.config_edit(c, nxt)],
            "command": f"meshca advance --stack {c.stack}" + (f" --to {planmod.position_ref(nxt)}" if c.rollback else ""),
        }
    else:
        out["complete"] = True
    return out


def _plan_text(plan, show_all: bool) -> str:
    from . import plan as planmod
    from .certs import colon_fingerprint, fingerprint, load_certs

    c = plan.config
    step_marks = planmod.step_marks(plan, planmod.previous_plan(plan))
    preview = plan_preview(plan, step_marks)
    marks = {cluster: {s.id: m for m, s in ms} for cluster, ms in step_marks.items()}
    last = len(plan.route) - 1
    out = [f"stack {c.stack} · useCase {c.use_case} · phase {c.phase} · rollback {str(c.rollback).lower()}"]
    if plan.position is None:
        out.append("position: off the route's batch order (see MCA0304 on stderr)")
    else:
        pos = plan.route[plan.position]
        out.append(f"position {planmod.position_name(pos)} (of 0..{last}): {pos.label}{' (rollback)' if c.rollback else ''}")
    root = load_certs(c.ca_files.root_cert.read_bytes())[0]
    out.append(f"root of trust: {c.ca_files.shown('root_cert')} sha256 {colon_fingerprint(fingerprint(root))}")
    for cp in plan.clusters:
        steps = cp.steps if show_all else [s for s in cp.steps if s.phase == c.phase]
        out.append("")
        out.append(f"cluster {cp.cluster.name} (context {cp.cluster.context}): {len(steps)} steps{' in phase ' + c.phase if not show_all else ''}")
        for s in steps:
            out.append(f"{marks[cp.cluster.name][s.id]} [{s.procedure}] {s.id}: {s.title}")
            for i, text in enumerate(_shell_line(s).split("\n")):
                out.append(("      $ " if i == 0 else "        ") + text)
            if s.depends_on:
                out.append(f"      after: {', '.join(s.depends_on)}")
            if s.action == "install" and s.params.get("cacerts") == "unknown":
                out.append("      note: the four certificate flags are dropped when a cacerts Secret matching the files exists (read at preview)")
        for s in planmod.dropped_steps(plan, planmod.previous_plan(plan))[cp.cluster.name]:
            out.append(f"- [{s.procedure}] {s.id}: {s.title} (leaves the state; runs nothing)")
    n = preview["summary"]
    against = f"position {preview['previous']['name']}" if preview["previous"] else "nothing (the first position)"
    out.append("")
    dropped = f", {n['dropped']} dropped -" if n["dropped"] else ""
    out.append(f"summary: {n['new'] + n['changed']} to run ({n['new']} new +, {n['changed']} changed ~), {n['unchanged']} already done{dropped}, against {against}")
    out.append("apply this position:")
    out += [f"  {line}" for line in preview["commands"]]
    if preview["complete"]:
        out.append(f"the migration is complete: position {preview['position']['name']} is the route's last")
    elif preview["next"]:
        nxt = preview["next"]
        out.append(f"{'after the rollback, return to' if c.rollback else 'next'} position {nxt['name']}: {nxt['label']}")
        out.append(f"  edit {nxt['file']} ({nxt['command']} does it):")
        for e in nxt["edit"]:
            out.append(f"    {e['key']}: {_yaml_scalar(e['from'])} -> {_yaml_scalar(e['to'])}")
    return "\n".join(out)


def cmd_plan(args: argparse.Namespace) -> int:
    from . import plan as planmod
    from .certs import fingerprint, load_certs, short_fingerprint
    from .errors import warn

    config = load_config_from_args(args)
    plan = planmod.build(config)
    notes = []
    if plan.position is None:
        moved = sorted(n for n, r in config.namespace_map.items() if r != config.old_revision)
        notes.append(warn("PositionOffRoute", "meshca:namespaces", moved=", ".join(moved) or "nothing"))
    root_fp = fingerprint(load_certs(config.ca_files.root_cert.read_bytes())[0])
    for cl in config.clusters:
        notes.append(
            warn(
                "RootOfTrustUnverifiedOffline",
                config.ca_files.shown("root_cert"),
                fingerprint=short_fingerprint(root_fp),
                cluster=cl.name,
                context=cl.context,
            )
        )
    if args.json:
        doc = plan.to_json()
        doc["rootOfTrust"] = {"rootSha256": root_fp, "verified": False, "reason": "offline: needs a cluster"}
        doc["preview"] = plan_preview(plan)
        print(json.dumps(doc, indent=2))
    else:
        print(_plan_text(plan, args.all))
    for note in notes:
        print(note.line(), file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="preview the stack's position: its steps marked new or already done, the next position's edit")
    add_stack_arguments(p)
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.add_argument("--all", action="store_true", help="every step since the starting point, not only the current phase's")
    p.set_defaults(func=cmd_plan)


# ----------------------------------------------------------------------------- explain


def cmd_explain(args: argparse.Namespace) -> int:
    from .errors import by_code, catalogue

    wanted = args.code.upper()
    try:
        message = by_code(wanted) if wanted.startswith("MCA") else catalogue()[args.code]
    except KeyError:
        raise MeshcaError("UnknownMessageCode", args.code) from None
    doc = {
        "code": message.code,
        "name": message.name,
        "level": message.level,
        "retired": message.retired,
        "description": message.description,
        "problem": message.template,
        "fix": message.fix,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{message.code} {message.name} ({message.level}{', retired' if message.retired else ''})")
    print(f"  {message.description}")
    print(f"  problem: {message.template}")
    print(f"  fix:     {message.fix}")
    return 0


def register_explain(subparsers) -> None:
    p = subparsers.add_parser(
        "explain",
        help="print a message's catalogue entry (what it means and how to fix it)",
        description="Print the catalogue entry of a coded message (meshca/messages.yaml): level, meaning, the problem template and the fix.",
        epilog="examples:\n  meshca explain MCA0131\n  meshca explain --json MCA0440",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("code", help="the code (MCA0131) or the message name (RevisionInvalid)")
    p.add_argument("--json", action="store_true", help="print the entry as JSON")
    p.set_defaults(func=cmd_explain)


# ----------------------------------------------------------------------------- main


# Commands whose parser is built alone when they are the one asked for: ``meshca check`` is what
# the trust gates run on every poll, and importing every other command (the simulated mesh, the
# planner) would cost it more CPU than a 100-pod check's own work; ``meshca restart`` runs once per
# namespace per phase (1,800 processes for a route of 3 clusters x 300 namespaces), where the full
# parser cost 0.27 s of CPU each, mostly importing the planner and the Pulumi SDK it never uses.
# Help and behaviour are the same.
LEAN_COMMANDS = {"check": "meshca.trust.cli", "restart": "meshca.restart"}


class _VersionAction(argparse.Action):
    """``--version``, reading the installed version only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser._print_message(f"meshca {_version()}\n", sys.stdout)
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only`` (a LEAN_COMMANDS key), just that command's."""
    parser = _Parser(prog="meshca", description="Move Cloud Service Mesh from Istio CA (Citadel) to Mesh CA with zero downtime.")
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    modules = [LEAN_COMMANDS[only]] if only in LEAN_COMMANDS else COMMAND_MODULES
    for name in modules:
        module = sys.modules[__name__] if name == __name__ else importlib.import_module(name)
        module.register(subparsers)
    if only in LEAN_COMMANDS:
        from . import help as helpmod

        helpmod.document(parser)
        return parser
    register_explain(subparsers)
    from . import help as helpmod

    helpmod.register(subparsers)  # completion
    helpmod.document(parser)  # every command: a description and examples; every option: help
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshca")
    except PackageNotFoundError:  # run from a source tree without an install
        return "unknown (not installed)"


def _report(errors: list[MeshcaError], as_json: bool) -> None:
    """Coded errors: one line each on stderr; with --json also one document on stdout."""
    if as_json:
        print(json.dumps({"ok": False, "errors": [{**e.as_dict(), "line": e.line()} for e in errors]}, indent=2))
    for error in errors:
        print(error.line(), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv
    try:
        parser = build_parser(argv[0] if argv else None)
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except MeshcaErrors as exc:
        _report(exc.errors, as_json)
        return 2
    except MeshcaError as exc:
        _report([exc], as_json)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # never a traceback for the operator
        if os.environ.get("MESHCA_DEBUG"):
            traceback.print_exc()
        _report([MeshcaError("InternalError", "meshca", reason=f"{type(exc).__name__}: {exc}")], as_json)
        return 2


if __name__ == "__main__":
    sys.exit(main())
