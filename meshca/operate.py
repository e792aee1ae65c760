"""``meshca advance`` and ``meshca up``: move a stack along its route without hand-editing YAML.

- ``meshca advance --stack S [--to TARGET]`` rewrites ``Pulumi.S.yaml`` to the next position of
  the route (or to TARGET: ``N``, ``PHASE`` = its last forward position, ``PHASE:BATCH``;
  plan.resolve_position) with a ruamel round trip (promote.rewrite: only ``meshca:phase`` and
  the namespaces' revisions change; comments, key order and layout stay). Before writing it
  refuses what the transition guard would refuse of that edit (transitions.judge_offline:
  the guard's own rules, judged without gate evidence, which only ``pulumi up`` can read) and
  what the config validation refuses; each refusal is one coded line, exit 2, nothing written.
- ``meshca up --stack S --to TARGET`` walks there one position at a time through Pulumi's
  Automation API (meshca/pulumi_run.py, one child process per run): it applies the stack's
  current position first (a no-op when it already ran: completed steps never run again), then
  for each next position edits the stack file as ``advance`` does, runs ``pulumi preview
  --policy-pack policy``, then ``pulumi up``. At the first refusal (the offline guard, the
  validation, or the preview) it puts the stack file back to the last applied position and
  stops with the refusal's coded line(s) and MCA1014 (exit 2). When an ``up`` fails it leaves
  the file at that position and stops with MCA1015 (exit 1): the same ``meshca up`` again
  resumes there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from . import plan as planmod
from .errors import MeshcaError, MeshcaErrors

MCA_LINE = re.compile(r"\b(?:Error|Warning|Info) MCA\d{4} .*?; fix: .*")


# ----------------------------------------------------------------------------- advance


def _load(args: argparse.Namespace):
    from .cli import load_config_from_args

    return load_config_from_args(args)


def plan_move(config, to: str | None):
    """(positions, here, target) for a move of ``config`` forward; raises the coded refusals
    of a target that is unknown, not ahead, or missing (off route / complete)."""
    positions = planmod.route(config)
    here = planmod.locate(config, positions)
    if to is not None:
        target = planmod.resolve_position(positions, to)
    elif here is None:
        moved = sorted(n for n, r in config.namespace_map.items() if r != config.old_revision)
        raise MeshcaError("AdvanceOffRoute", f"{config.source} meshca:namespaces", phase=config.phase, moved=", ".join(moved) or "nothing", stack=config.stack)
    elif here == len(positions) - 1:
        pos = positions[here]
        raise MeshcaError("AdvanceComplete", f"{config.source} meshca:phase", stack=config.stack, position=planmod.position_name(pos), ref=planmod.position_ref(pos))
    else:
        target = positions[here + 1]
    if here is not None and target.index <= here and not config.rollback:
        cur = positions[here]
        raise MeshcaError(
            "AdvanceNotForward", "--to" if to is not None else f"{config.source} meshca:phase",
            target=planmod.position_name(target), current=planmod.position_name(cur), current_ref=planmod.position_ref(cur), stack=config.stack,
        )
    return positions, here, target


def edited(config, target) -> tuple[str, object]:
    """The stack file's text at ``target`` and its validated config; raises the guard's and
    the validation's refusals of that edit (nothing is written here)."""
    from .promote import rewrite, validate_text
    from .transitions import judge_offline

    new = config.at(target.phase, False, target.namespace_map)
    refusals = judge_offline(config, new)
    if refusals:
        raise MeshcaErrors(refusals)
    path = Path(config.source)
    text = path.read_text(encoding="utf-8")
    new_text = rewrite(text, target.phase, target.namespace_map)
    if config.rollback:  # the return from a rollback (the only move the guard allows out of one)
        new_text = _set_key(new_text, "rollback", False)
    return new_text, validate_text(new_text, path, config.stack)


def _set_key(text: str, bare: str, value) -> str:
    import io

    from .promote import _key, _round_trip

    rt = _round_trip()
    doc = rt.load(text)
    config = doc["config"]
    config[_key(config, bare) or f"meshca:{bare}"] = value
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


def cmd_advance(args: argparse.Namespace) -> int:
    from .promote import write_atomically

    config = _load(args)
    positions, here, target = plan_move(config, args.to)
    new_text, new_config = edited(config, target)
    edits = planmod.config_edit(config, target)
    written = not args.dry_run and new_text != Path(config.source).read_text(encoding="utf-8")
    if written:
        write_atomically(Path(config.source), new_text)
    came = planmod.position_name(positions[here]) if here is not None else "off the route"
    if args.json:
        print(json.dumps({
            "ok": True, "stack": config.stack, "file": str(config.source), "written": written,
            "from": None if here is None else {"index": here, "ref": planmod.position_ref(positions[here])},
            "to": {"index": target.index, "ref": planmod.position_ref(target), "label": target.label},
            "edit": [{"key": k, "from": a, "to": b} for k, a, b in edits],
        }, indent=2))
        return 0
    verb = "would advance" if args.dry_run else "advanced"
    print(f"{verb} {config.stack}: {came} -> {planmod.position_name(target)} ({target.label})")
    for key, a, b in edits:
        print(f"  {key}: {a} -> {b}")
    print(f"next: pulumi preview --stack {config.stack} --policy-pack policy, then pulumi up --stack {config.stack} --policy-pack policy"
          f" (or: meshca up --stack {config.stack} --to {target.index})")
    return 0


# ----------------------------------------------------------------------------- up


class _Runner:
    """One preview or up in a child process (meshca/pulumi_run.py); collects its output and
    reports gate events to ``show``."""

    def __init__(self, project_dir: Path, stack: str, engine: str, console) -> None:
        self.project_dir, self.stack, self.engine, self.console = project_dir, stack, engine, console

    def run(self, command: str, log) -> tuple[int, str, dict]:
        from .pulumi_run import EVENT_PREFIX, GATE_TYPE

        argv = [sys.executable, "-m", "meshca.pulumi_run", "--project-dir", str(self.project_dir), "--stack", self.stack,
                "--engine", self.engine, "--policy-pack", "policy", command]
        env = dict(os.environ)
        env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
        proc = subprocess.Popen(argv, cwd=self.project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        lines: list[str] = []
        summary: dict = {}
        started: dict[str, float] = {}
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.startswith(EVENT_PREFIX):
                try:
                    ev = json.loads(raw[len(EVENT_PREFIX):])
                except ValueError:
                    continue
                name = str(ev.get("urn") or "").rsplit("::", 1)[-1]
                if ev.get("kind") == "summary":
                    summary = dict(ev.get("changes") or {})
                    packs = ev.get("policyPacks") or {}
                    if packs:
                        # keys are NAME|local|PATH for a local pack (the engine's summary event)
                        summary["policy packs"] = ", ".join(f"{k.split('|', 1)[0]}@{v}" for k, v in sorted(packs.items()))
                elif ev.get("type") == GATE_TYPE and command == "up":
                    if ev["kind"] == "resource_pre_event" and ev.get("op") not in ("same", "read"):
                        started[name] = time.monotonic()
                        self.console.print(f"    gate {name}: polling")
                    elif ev["kind"] == "res_outputs_event" and name in started:
                        took = time.monotonic() - started.pop(name)
                        ok = ev.get("passed") is True
                        self.console.print(f"    gate {name}: [{'green' if ok else 'red'}]{'passed' if ok else 'did not pass'}[/] ({took:.1f} s)")
                    elif ev["kind"] == "res_op_failed_event":
                        started.pop(name, None)
                        self.console.print(f"    gate {name}: [red]failed[/]")
                continue
            lines.append(raw)
            log.write(raw)
        rc = proc.wait()
        log.flush()
        return rc, "".join(lines), summary


def mca_lines(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(0).strip() for m in MCA_LINE.finditer(text)))


def _error_lines(text: str) -> list[str]:
    out = [line.strip() for line in text.splitlines() if "error:" in line and "MCA" not in line]
    return list(dict.fromkeys(out))


def _changes(summary: dict) -> str:
    """``12 create, 3 update, policy packs meshca@0.1.0`` (the engine's summary event)."""
    parts = [f"{v} {k}" for k, v in sorted(summary.items()) if isinstance(v, int) and v and k != "same"]
    packs = summary.get("policy packs")
    return ", ".join(parts or ["no changes"]) + (f"; policy packs {packs}" if packs else "; no policy pack")


def cmd_up(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .promote import write_atomically
    from .pulumi_run import default_engine

    console = Console(highlight=False, soft_wrap=True)
    config = _load(args)
    path = Path(config.source)
    project_dir = path.resolve().parent
    positions, here, target = plan_move(config, args.to)
    if here is None:
        moved = sorted(n for n, r in config.namespace_map.items() if r != config.old_revision)
        raise MeshcaError("AdvanceOffRoute", f"{config.source} meshca:namespaces", phase=config.phase, moved=", ".join(moved) or "nothing", stack=config.stack)
    if target.index < here:  # only from a rollback (plan_move refuses it otherwise): the way back is advance's edit
        cur = positions[here]
        raise MeshcaError("AdvanceNotForward", "--to", target=planmod.position_name(target), current=planmod.position_name(cur),
                          current_ref=planmod.position_ref(cur), stack=config.stack)
    engine = args.engine if args.engine != "auto" else default_engine()
    walk = positions[here : target.index + 1]
    runner = _Runner(project_dir, config.stack, engine, console)
    log_path = Path(args.log) if args.log else project_dir / f".meshca-up-{config.stack}.log"
    console.print(f"meshca up {config.stack}: {planmod.position_name(walk[0])} -> {planmod.position_name(target)}, "
                  f"{len(walk)} position(s); pulumi through the Automation API ({engine}"
                  f"{': no pulumi-language-python on PATH, the program runs inline' if engine == 'inline' else ''}); log {log_path}")
    applied = walk[0]
    with log_path.open("a", encoding="utf-8") as log:
        for k, pos in enumerate(walk, start=1):
            name = planmod.position_name(pos)
            console.print(f"[bold][{k}/{len(walk)}] position {name}[/]: {pos.label}")
            before = path.read_text(encoding="utf-8")
            if k > 1:
                current = _load(args)
                try:
                    new_text, _ = edited(current, pos)
                except (MeshcaError, MeshcaErrors) as exc:
                    errors = exc.errors if isinstance(exc, MeshcaErrors) else [exc]
                    by = "the transition guard (offline)" if any(e.code.startswith("MCA06") for e in errors) else "the config validation"
                    raise MeshcaErrors([*errors, _refused(pos, by, [e.code for e in errors], applied)]) from None
                write_atomically(path, new_text)
            log.write(f"\n=== position {name}: pulumi preview --policy-pack policy\n")
            t0 = time.monotonic()
            with console.status(f"  preview {name}"):
                rc, out, summary = runner.run("preview", log)
            if rc != 0:
                if k > 1:
                    write_atomically(path, before)
                if rc == 3:
                    raise MeshcaError("UpStackNotFound", f"stack {config.stack}", stack=config.stack,
                                      backend=os.environ.get("PULUMI_BACKEND_URL", "the current backend"), reason=(_error_lines(out) or out.strip().splitlines()[-1:] or ["?"])[-1])
                found = mca_lines(out)
                for line in found:
                    print(line, file=sys.stderr)
                reason = [line.split(" ", 2)[1] for line in found] or [(_error_lines(out) or ["no coded line; see " + str(log_path)])[0][:200]]
                console.print(f"  preview: [red]refused[/] ({time.monotonic() - t0:.1f} s)")
                raise _refused(pos, "pulumi preview --policy-pack policy", reason, applied if k > 1 else None)
            console.print(f"  preview: [green]ok[/] ({_changes(summary)}, {time.monotonic() - t0:.1f} s)")
            log.write(f"\n=== position {name}: pulumi up\n")
            t0 = time.monotonic()
            with console.status(f"  up {name}"):
                rc, out, summary = runner.run("up", log)
            if rc != 0:
                found = mca_lines(out)
                for line in found:
                    print(line, file=sys.stderr)
                reason = "; ".join(line.split(" ", 2)[1] for line in found) or (_error_lines(out) or [f"see {log_path}"])[0][:300]
                console.print(f"  up: [red]failed[/] ({time.monotonic() - t0:.1f} s)")
                error = MeshcaError("UpFailed", f"{config.source} position {name}", position=name, reason=reason)
                print(error.line(), file=sys.stderr)
                return 1
            console.print(f"  up: [green]done[/] ({_changes(summary)}, {time.monotonic() - t0:.1f} s)")
            applied = pos
    last = len(positions) - 1
    done = " (the route's last position: the migration is complete)" if target.index == last else ""
    console.print(f"[green]reached position {planmod.position_name(target)}[/]{done}")
    return 0


def _refused(pos, by: str, codes: list[str], back) -> MeshcaError:
    name = planmod.position_name(pos)
    where = planmod.position_name(back) if back is not None else f"{name} (not changed)"
    return MeshcaError("UpRefused", f"position {name}", position=name, by=by, codes=", ".join(dict.fromkeys(codes)), back=where)


# ----------------------------------------------------------------------------- registration


def register(subparsers) -> None:
    from .cli import add_stack_arguments

    p = subparsers.add_parser("advance", help="edit the stack file to the next position of the route (or --to TARGET), comments kept")
    add_stack_arguments(p)
    p.add_argument("--to", metavar="TARGET", help="N (as meshca plan numbers positions, baseline = 0), PHASE (its last forward position) or PHASE:BATCH")
    p.add_argument("--dry-run", action="store_true", help="check and print the edit, write nothing")
    p.add_argument("--json", action="store_true", help="print the move as JSON")
    p.set_defaults(func=cmd_advance)

    p = subparsers.add_parser("up", help="walk the stack to a position: per position, edit the stack file, pulumi preview with the policy pack, pulumi up")
    add_stack_arguments(p)
    p.add_argument("--to", metavar="TARGET", required=True, help="N (as meshca plan numbers positions, baseline = 0), PHASE (its last forward position) or PHASE:BATCH")
    p.add_argument("--engine", choices=("auto", "local", "inline"), default="auto",
                   help="local: the project's program through pulumi-language-python; inline: the Automation API's inline program (no language host); auto: local when pulumi-language-python is on PATH")
    p.add_argument("--log", metavar="FILE", help="where the pulumi output goes (default: .meshca-up-STACK.log in the project directory)")
    p.set_defaults(func=cmd_up)
