"""``meshca rehearse``: walk a stack's whole route on the simulated mesh.

    meshca rehearse --stack dev --report rehearsal.html      # the stack's route (canary)
    meshca rehearse --scenario big-bang                      # a scenario on the built-in mesh
    meshca rehearse --stack dev --scenario skip-restart --json

Exit 0 when the route completes with zero failed handshakes and every gate passes; 1
otherwise, with one coded line on stderr naming the first step that broke mTLS, failed a
gate or failed its command; 2 for usage errors. ``--json`` prints only JSON on stdout;
progress goes to stderr.

A fault scenario (``--list``) that stops the route is rerun after its remedy, as the operator
would run ``pulumi up`` again; each stop is one coded warning line (MCA0515) on stderr.
``--no-rerun`` ends the rehearsal at the first stop instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import MeshcaError, split_line


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def register(subparsers) -> None:
    from ..cli import add_stack_arguments
    from .scenarios import SCENARIOS

    p = subparsers.add_parser(
        "rehearse",
        help="walk the stack's whole route on a simulated mesh, proving mTLS between every pair after every step",
        description="Walk a stack's whole route on a simulated mesh, proving mTLS between every pair after every step.",
    )
    add_stack_arguments(p, required=False)
    p.add_argument("--scenario", metavar="NAME", help=f"one of: {', '.join(SCENARIOS)} (default canary; without --stack/--config on the built-in mesh)")
    p.add_argument("--list", action="store_true", help="list the scenarios and the model's switches, then exit")
    p.add_argument("--json", action="store_true", help="print only the JSON result on stdout")
    p.add_argument("--report", type=Path, metavar="FILE.html", help="write a self-contained HTML report (- : to stdout; the table then goes to stderr)")
    p.add_argument("--clusters", type=_int, help="built-in mesh: clusters (default 2)")
    p.add_argument("--namespaces", type=_int, help="built-in mesh: application namespaces (default 4)")
    p.add_argument("--batch-size", type=_int, help="built-in mesh: namespaces per batch (default 2)")
    p.add_argument("--use-case", choices=("migrate", "upgrade"), help="built-in mesh: starting point (default migrate)")
    p.add_argument("--workloads", type=_int, help="workloads per namespace, cycling Deployment, StatefulSet, DaemonSet (default 3)")
    p.add_argument("--traffic", metavar="MODE|FILE", help="who calls whom: default, full, local, or a YAML file of edges")
    p.add_argument("--assume", action="append", default=[], metavar="SWITCH=VALUE", help="set a switch of the model (see --list)")
    p.add_argument("--no-preflight", dest="preflight", action="store_false", help="leave out the A0 root-of-trust gate")
    p.add_argument("--keep-going", action="store_true", help="continue past a failed gate (pulumi up would stop there)")
    p.add_argument("--no-rerun", dest="rerun", action="store_false", help="end at the first stop instead of applying the scenario's remedy and running again")
    p.add_argument("--what-if", action="store_true", help="also rehearse once per other setting of each switch and show what each predicts")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_rehearse)


def _listing() -> str:
    from . import switches as sw
    from .scenarios import SCENARIOS

    out = ["scenarios:"]
    out += [f"  {s.name:20s} {s.title}: {s.description}" for s in SCENARIOS.values()]
    out.append("switches (--assume NAME=VALUE):")
    out += [f"  {s.name}={sw.shown(s.default)}  {s.rule}" for s in sw.SWITCHES]
    return "\n".join(out)


def _options(args: argparse.Namespace):
    from . import switches as sw
    from .builtin import DEFAULTS, builtin_config, check_size
    from .scenarios import get
    from .start import MeshShape
    from .traffic import load_traffic

    scenario = get(args.scenario or "canary")
    overrides = {}
    for item in args.assume:
        name, eq, value = item.partition("=")
        if not eq:
            raise MeshcaError("RehearseSwitchValue", f"--assume {item}", name=name, value="", allowed="NAME=VALUE")
        overrides[name.strip()] = sw.parse_value(name.strip(), value)
    workloads = check_size("workloads", args.workloads) if args.workloads is not None else DEFAULTS["workloads"]
    stack_given = bool(args.stack or args.config)
    if stack_given:
        for option, value in (("--clusters", args.clusters), ("--namespaces", args.namespaces), ("--batch-size", args.batch_size), ("--use-case", args.use_case)):
            if value is not None:
                raise MeshcaError("RehearseNeedsStackOrMesh", option, option=option)
        from ..cli import load_config_from_args

        config = load_config_from_args(args)
    else:
        config = builtin_config(
            clusters=args.clusters if args.clusters is not None else DEFAULTS["clusters"],
            namespaces=args.namespaces if args.namespaces is not None else DEFAULTS["namespaces"],
            batch_size=args.batch_size if args.batch_size is not None else DEFAULTS["batch_size"],
            use_case=args.use_case or "migrate",
        )
    return config, scenario, dict(
        switches=overrides,
        shape=MeshShape(workloads=workloads),
        traffic=load_traffic(args.traffic),
        preflight=args.preflight,
        keep_going=args.keep_going,
        rerun=args.rerun,
    )


def _short(reason: str) -> str:
    """A nested coded line without its subject and fix, so the outer line keeps one 'fix:'."""
    parts = []
    for line in reason.split(" | "):
        coded = split_line(line)
        if coded and ": " in coded[2]:
            line = f"{coded[1]} {coded[2].partition(': ')[2].split('; fix: ')[0]}"
        parts.append(line)
    return " | ".join(parts)


def _failure_line(doc: dict) -> str:
    index = doc["summary"]["firstBrokenStep"]
    subject = f"rehearse {doc['stack']}/{doc['scenario']}"
    step = next((s for s in doc["steps"] if s["index"] == index), None)
    if step is None:  # every step passed but the route did not complete
        return MeshcaError("RehearseStepFailed", subject, index="-", step="route", reason=_short(doc["summary"]["stopReason"] or "incomplete")).line()
    name = f"{step['cluster']}:{step['step']}" if step["cluster"] else step["step"]
    if step.get("error"):
        return MeshcaError("RehearseStepFailed", subject, index=index, step=name, reason=_short(step["error"])).line()
    if step["failedPairs"]:
        p = step["failedPairs"][0]
        return MeshcaError(
            "RehearseMtlsBroken", subject, index=index, step=name, failed=len(step["failedPairs"]), example=f"{p['client']} -> {p['server']}: {p['reason']}"
        ).line()
    return MeshcaError("RehearseGateFailed", subject, index=index, step=name, reason=_short(step.get("gateReason") or "failed")).line()


def _interruption_line(doc: dict, stop: dict) -> str:
    name = f"{stop['cluster']}:{stop['step']}" if stop["cluster"] else stop["step"]
    return MeshcaError(
        "RehearseInterrupted",
        f"rehearse {doc['stack']}/{doc['scenario']}",
        index=stop["index"],
        step=name,
        reason=_short(stop["reason"]),
        remedy=stop["remedy"],
        point=stop["rerunFrom"],
    ).line()


def cmd_rehearse(args: argparse.Namespace) -> int:
    from .engine import Rehearsal
    from .report import gates_blind, make_console, ok, print_table, render_html

    if args.list:
        print(_listing())
        return 0
    to_stdout = args.report is not None and str(args.report) == "-"  # `-` means stdout
    if to_stdout and args.json:
        raise MeshcaError("StdoutTwice", "--report -", other="--json")
    config, scenario, options = _options(args)
    progress = None if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    rehearsal = Rehearsal(config, scenario, progress=progress, **options)
    doc = rehearsal.run()
    blind = gates_blind(doc)  # gates passed while pairs failed: say why (gates are per cluster)
    if blind:
        doc["summary"]["gatesBlind"] = blind
    if args.what_if:
        from .engine import what_if

        if progress:
            progress("what-if: one rehearsal per other setting of each switch")
        doc["whatIf"] = what_if(config, scenario, **options)
    if to_stdout:
        sys.stdout.write(render_html(doc, rehearsal.snapshots()))
        sys.stdout.flush()
    elif args.report:
        try:
            args.report.write_text(render_html(doc, rehearsal.snapshots()), encoding="utf-8")
        except OSError as exc:
            raise MeshcaError("RehearseReportUnwritable", str(args.report), reason=exc.strerror or exc) from None
    if args.json:
        print(json.dumps(doc, indent=1))
    elif to_stdout:  # stdout carries the report: the table goes to stderr (not with --quiet)
        if not args.quiet:
            print_table(doc, make_console(file=sys.stderr))
    else:
        print_table(doc, make_console())
    if args.report and not to_stdout and not args.quiet:
        print(f"report: {args.report}", file=sys.stderr)
    for stop in doc["summary"].get("interruptions") or ():
        print(_interruption_line(doc, stop), file=sys.stderr)
    if ok(doc):
        return 0
    if blind:  # before the failure line, which stays the last
        subject = f"rehearse {doc['stack']}/{doc['scenario']}"
        print(MeshcaError("RehearseGatesBlind", subject, **blind).line(), file=sys.stderr)
    print(_failure_line(doc), file=sys.stderr)
    return 1
