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


def _plan_text(plan, show_all: bool) -> str:
    from .certs import colon_fingerprint, fingerprint, load_certs

    c = plan.config
    out = [f"stack {c.stack} · useCase {c.use_case} · phase {c.phase} · rollback {str(c.rollback).lower()}"]
    if plan.position is None:
        out.append("position: off the route's batch order (see MCA0304 on stderr)")
    else:
        pos = plan.route[plan.position]
        out.append(f"position {pos.index} of {len(plan.route) - 1}: {pos.label}")
        if pos.index + 1 < len(plan.route) and not c.rollback:
            nxt = plan.route[pos.index + 1]
            out.append(f"next:       {nxt.label}")
    root = load_certs(c.ca_files.root_cert.read_bytes())[0]
    out.append(f"root of trust: {c.ca_files.shown('root_cert')} sha256 {colon_fingerprint(fingerprint(root))}")
    for cp in plan.clusters:
        steps = cp.steps if show_all else [s for s in cp.steps if s.phase == c.phase]
        out.append("")
        out.append(f"cluster {cp.cluster.name} (context {cp.cluster.context}): {len(steps)} steps{' in phase ' + c.phase if not show_all else ''}")
        for s in steps:
            out.append(f"  [{s.procedure}] {s.id}: {s.title}")
            for i, text in enumerate(_shell_line(s).split("\n")):
                out.append(("      $ " if i == 0 else "        ") + text)
            if s.depends_on:
                out.append(f"      after: {', '.join(s.depends_on)}")
            if s.action == "install" and s.params.get("cacerts") == "unknown":
                out.append("      note: the four certificate flags are dropped when a cacerts Secret matching the files exists (read at preview)")
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
                path=config.ca_files.shown("root_cert"),
            )
        )
    if args.json:
        doc = plan.to_json()
        doc["rootOfTrust"] = {"rootSha256": root_fp, "verified": False, "reason": "offline: needs a cluster"}
        print(json.dumps(doc, indent=2))
    else:
        print(_plan_text(plan, args.all))
    for note in notes:
        print(note.line(), file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="print the ordered steps of the stack's current position")
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
# planner) would cost it more CPU than a 100-pod check's own work. Help and behaviour are the same.
LEAN_COMMANDS = {"check": "meshca.trust.cli"}


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
