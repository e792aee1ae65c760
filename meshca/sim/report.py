"""What a rehearsal shows: a table per step (rich) and one self-contained HTML page.

The page has no external resources (inline CSS and SVG, system fonts, no scripts): a
timeline of namespaces x steps coloured by the revision their pods run, red where a call
to or from the namespace failed, with gate verdicts and phases above; the assumptions the
verdict rests on; and every step with what changed and which pairs failed.
"""

from __future__ import annotations

import html
from typing import Sequence

from . import switches as sw

REV_COLOURS = {"old": "#9aa0a6", "rev1": "#4285f4", "rev2": "#34a853", "mixed": "#a142f4", "none": "#f1f3f4", "other": "#fbbc04"}
FAIL = "#d93025"
OK = "#1e8e3e"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# ----------------------------------------------------------------------------- terminal


def condense(changed: Sequence[str]) -> list[str]:
    """Events of one step, with workload restarts of one kind of move counted together."""
    import re

    out: list[str] = []
    moves: dict[str, int] = {}
    for event in changed:
        text = event.split(": ", 1)[-1]
        m = re.match(r"(Deployment|StatefulSet|DaemonSet) \S+ restarted \((.*)\)$", text)
        if m:
            moves[m.group(2)] = moves.get(m.group(2), 0) + 1
            if moves[m.group(2)] == 1:
                out.append(f"\0{m.group(2)}")
            continue
        out.append(text)
    return [f"{moves[e[1:]]} workload(s) restarted ({e[1:]})" if e.startswith("\0") else e for e in out]


# Colour by meaning, never by rich's automatic highlighting (numbers, paths, quoted words):
# every console is made with highlight=False and every cell is a Text with one of these styles.
STYLES = {"error": "red", "warning": "yellow", "ok": "green"}


def make_console(file=None, width: int | None = None):
    """The rehearsal's console: no automatic highlighting, no markup in data, the terminal's
    width (COLUMNS, else 80 when not a terminal); the table reads at 80 columns."""
    from rich.console import Console

    return Console(file=file, width=width, highlight=False, markup=False, emoji=False)


def _styled(text: str, meaning: str | None = None):
    from rich.text import Text

    return Text(text, style=STYLES[meaning] if meaning else "")


def print_table(doc: dict, console) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    clusters = sorted({s["cluster"] for s in doc["steps"] if s["cluster"]})
    one = len(clusters) <= 1  # one cluster: named under the table, no column for it (80 columns)
    table = Table(
        title=f"meshca rehearse: stack {doc['stack']}, scenario {doc['scenario']}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        highlight=False,
        caption=(f"cluster {clusters[0]}; " if one and clusters else "") + "ok, failed: pair verdicts (mTLS) after the step",
    )
    table.add_column("#", justify="right", no_wrap=True)
    if not one:
        table.add_column("cluster", no_wrap=True)
    table.add_column("step, and what changed", overflow="fold", ratio=1)
    table.add_column("ok", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("gates", no_wrap=True)
    for s in doc["steps"]:
        changed = condense(s["changed"])
        cell = Text(s["step"], style="bold")  # the step id in bold, what changed below it
        if s.get("error"):
            cell.append("\n").append_text(_styled(f"ERROR {s['error'][:160]}", "error"))
        elif changed:
            cell.append("\n" + "; ".join(changed[:2]) + (f" (+{len(changed) - 2} more)" if len(changed) > 2 else ""))
        failed = s["handshakes"]["failed"]
        gates = Text(" ").join(_styled(v, "ok" if v == "pass" else "error") for v in s["gates"].values())
        row = [str(s["index"])] + ([] if one else [s["cluster"] or "-"])
        row += [cell, str(s["handshakes"]["ok"]), _styled(str(failed), "error") if failed else "0", gates]
        table.add_row(*row)
    console.print(table)
    sm = doc["summary"]
    st = doc["stats"]
    verdict = _styled("PASS", "ok") if ok(doc) else _styled("FAIL", "error")
    console.print(
        Text.assemble(
            verdict,
            f": {sm['steps']} steps, {sm['handshakes']} pair verdicts ({sm['handshakesFailed']} failed), "
            f"{sm['gatesFailed']} gates failed; {st['realHandshakes']} real handshakes, {st['gateChecks']} gate checks, "
            f"{st['elapsedSeconds']:.2f}s",
        )
    )
    if sm.get("gatesBlind"):
        console.print(Text.assemble(_styled("why the gates passed:", "warning"), " " + gates_blind_text(sm["gatesBlind"])))
    console.print("assumptions: " + ", ".join(f"{k}={sw.shown(v)}" for k, v in doc["assumptions"].items()))
    for w in doc.get("whatIf") or ():
        outcome = "pass" if w["firstBrokenStep"] is None and w["completed"] else f"first broken at step {w['firstBrokenStep']} {w['step']} ({w['handshakesFailed']} failed pairs, {w['gatesFailed']} failed gates)"
        console.print(f"what if {w['switch']}={sw.shown(w['value'])}: {outcome}")


def gates_blind(doc: dict) -> dict | None:
    """When every gate passed while pairs failed: how many failing pairs crossed clusters.

    Gates are per cluster: each reads its own cluster's proxies (their bundles and
    certificates) against the reference roots, and never a handshake with another cluster's
    workloads. A pair from one cluster to another can therefore fail while every gate passes.
    None when no pair failed or a gate failed (the gate then says why itself)."""
    sm = doc["summary"]
    if not sm["handshakesFailed"] or sm["gatesFailed"]:
        return None
    pairs = list(dict.fromkeys((p["client"], p["server"]) for s in doc["steps"] for p in s["failedPairs"]))
    cross = [(c, s) for c, s in pairs if c.split("/", 1)[0] != s.split("/", 1)[0]]
    gates = sum(1 for s in doc["steps"] for v in s["gates"].values() if v == "pass")
    example = (cross or pairs or [("", "")])[0]
    if cross and len(cross) == len(pairs):
        why = "every failing pair crosses clusters, and a gate judges only its own cluster's proxies"
    elif cross:
        why = f"{len(cross)} of them cross clusters, which no gate judges (a gate reads only its own cluster's proxies); the other {len(pairs) - len(cross)} stay within a cluster, where gates check roots and issuers, not handshakes"
    else:
        why = "the failing pairs stay within their clusters: gates check each proxy's roots and certificate issuer, not the handshake between two proxies"
    return {"gatesPassed": gates, "failedPairs": len(pairs), "crossCluster": len(cross), "example": f"{example[0]} -> {example[1]}", "why": why}


def gates_blind_text(blind: dict) -> str:
    return (
        f"{blind['gatesPassed']} gate(s) passed while {blind['failedPairs']} pair(s) failed: {blind['why']} "
        f"({blind['crossCluster']} cross-cluster, e.g. {blind['example']})"
    )


def ok(doc: dict) -> bool:
    sm = doc["summary"]
    return sm["completed"] and sm["handshakesFailed"] == 0 and sm["gatesFailed"] == 0 and sm["firstBrokenStep"] is None


# ----------------------------------------------------------------------------- HTML


def _rev_colour(rev: str, revisions: dict) -> str:
    for role in ("old", "rev1", "rev2"):
        if rev == revisions.get(role):
            return REV_COLOURS[role]
    if rev in ("mixed",):
        return REV_COLOURS["mixed"]
    if rev in ("no sidecar", "no pods", "none"):
        return REV_COLOURS["none"]
    return REV_COLOURS["other"]


def _timeline(doc: dict, snapshots: Sequence[dict]) -> str:
    steps = doc["steps"]
    revisions = doc["settings"]["revisions"]
    order = {ns: i for i, ns in enumerate(doc["settings"].get("namespaceOrder", []))}
    # Per cluster: the gateways first, then the namespaces in batch order (the staircase of moves).
    rows = sorted({row for snap in snapshots for row in snap}, key=lambda r: (r.split("/")[0], r.split("/")[1] != "istio-system", order.get(r.split("/")[1], len(order)), r))
    n = len(steps)
    cw = max(3, min(14, 1100 // max(1, n)))
    ch = 13
    left, top = 230, 64
    width = left + n * cw + 20
    height = top + len(rows) * ch + 40
    # Inline SVG in HTML needs no namespace declaration: the page names no URL at all.
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="timeline">']
    # phase bands
    start = 0
    for i in range(1, n + 1):
        if i == n or steps[i]["phase"] != steps[start]["phase"] or steps[i]["rollback"] != steps[start]["rollback"]:
            phase = steps[start]["phase"] + (" (rollback)" if steps[start]["rollback"] else "")
            x = left + start * cw
            out.append(f'<rect x="{x}" y="4" width="{(i - start) * cw}" height="16" fill="{"#fce8e6" if steps[start]["rollback"] else "#e8f0fe"}" stroke="#fff"><title>{_esc(phase)}</title></rect>')
            if (i - start) * cw > 50:
                out.append(f'<text x="{x + 3}" y="16" font-size="10" fill="#3c4043">{_esc(phase)}</text>')
            start = i
    out.append('<text x="4" y="16" font-size="11" fill="#3c4043">phase</text>')
    out.append('<text x="4" y="34" font-size="11" fill="#3c4043">mTLS (failed pairs)</text>')
    out.append('<text x="4" y="52" font-size="11" fill="#3c4043">gates / errors</text>')
    worst = max((s["handshakes"]["failed"] for s in steps), default=0) or 1
    for i, s in enumerate(steps):
        x = left + i * cw
        failed = s["handshakes"]["failed"]
        colour = OK if failed == 0 else FAIL
        opacity = 0.35 if failed == 0 else 0.45 + 0.55 * failed / worst
        tip = f"#{s['index']} {s['cluster']} {s['step']}: {s['handshakes']['ok']} ok, {failed} failed"
        out.append(f'<rect x="{x}" y="24" width="{cw}" height="14" fill="{colour}" fill-opacity="{opacity:.2f}"><title>{_esc(tip)}</title></rect>')
        verdicts = list(s["gates"].values())
        name = f"#{s['index']} {s['step']}"
        if s.get("error") or "fail" in verdicts:
            why = s.get("error") or s.get("gateReason") or "gate failed"
            out.append(f'<rect x="{x}" y="42" width="{cw}" height="14" fill="{FAIL}"><title>{_esc(name + ": " + why)}</title></rect>')
        elif verdicts:
            out.append(f'<rect x="{x}" y="42" width="{cw}" height="14" fill="{OK}"><title>{_esc(name + ": gate passed")}</title></rect>')
    for r, row in enumerate(rows):
        y = top + r * ch
        out.append(f'<text x="{left - 6}" y="{y + ch - 3}" font-size="10" text-anchor="end" fill="#3c4043">{_esc(row)}</text>')
        run_start, run_key = 0, None
        cells = [snap.get(row, ("none", 0)) for snap in snapshots]
        # Merge equal neighbours into one rect: a big mesh stays a small page.
        for i in range(len(cells) + 1):
            key = cells[i] if i < len(cells) else None
            if i == len(cells) or key != run_key:
                if run_key is not None:
                    rev, bad = run_key
                    x = left + run_start * cw
                    w = (i - run_start) * cw
                    tip = f"{row}: {rev}" + (f", {bad} failing pair(s)" if bad else "") + f" (steps {steps[run_start]['index']}-{steps[i - 1]['index']})"
                    out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{ch - 2}" fill="{_rev_colour(rev, revisions)}"><title>{_esc(tip)}</title></rect>')
                    if bad:
                        out.append(f'<rect x="{x + 0.5}" y="{y + 0.5}" width="{w - 1}" height="{ch - 3}" fill="url(#broken)" stroke="{FAIL}" stroke-width="1.5"><title>{_esc(tip)}</title></rect>')
                run_start, run_key = i, key
    out.append(
        '<defs><pattern id="broken" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="3" height="6" fill="{FAIL}" fill-opacity="0.6"/></pattern></defs>'
    )
    # step index ruler
    every = max(1, 40 // cw)
    for i in range(0, n, every):
        out.append(f'<text x="{left + i * cw}" y="{height - 22}" font-size="9" fill="#5f6368">{steps[i]["index"]}</text>')
    out.append(f'<text x="{left}" y="{height - 8}" font-size="10" fill="#5f6368">step index (hover a cell for details)</text>')
    out.append("</svg>")
    return "".join(out)


def _legend(revisions: dict) -> str:
    items = [
        (REV_COLOURS["old"], f"old revision ({revisions.get('old')})"),
        (REV_COLOURS["rev1"], f"REV1 ({revisions.get('rev1')})"),
        (REV_COLOURS["rev2"], f"REV2 ({revisions.get('rev2')})"),
        (REV_COLOURS["mixed"], "pods on several revisions"),
        (REV_COLOURS["none"], "no sidecar / no pods"),
    ]
    parts = [f'<span class="key"><i style="background:{c}"></i>{_esc(t)}</span>' for c, t in items]
    parts.append('<span class="key"><i class="hatch"></i>a call to or from the namespace failed</span>')
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#202124;max-width:1400px}
h1{font-size:22px;margin:0 0 6px} h2{font-size:17px;margin:28px 0 8px}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#1e8e3e}.fail{background:#d93025}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{border-bottom:1px solid #e8eaed;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f8f9fa;position:sticky;top:0}
tr.bad td{background:#fce8e6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.key{display:inline-block;margin:0 14px 6px 0;font-size:12.5px}
.key i{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-2px;border:1px solid #dadce0}
.key i.hatch{background:repeating-linear-gradient(45deg,#d93025 0 3px,#fff 3px 6px);border-color:#d93025}
.scroll{overflow-x:auto;border:1px solid #e8eaed;padding:6px}
code{font-size:12px;background:#f1f3f4;padding:1px 4px;border-radius:3px}
details{margin:2px 0} summary{cursor:pointer;color:#1a73e8}
.small{color:#5f6368;font-size:12.5px}
"""


def render_html(doc: dict, snapshots: Sequence[dict]) -> str:
    sm, st, settings = doc["summary"], doc["stats"], doc["settings"]
    passed = ok(doc)
    first = sm["firstBrokenStep"]
    first_step = next((s for s in doc["steps"] if s["index"] == first), None)
    reruns = sm.get("interruptions") or []
    headline = (
        "PASS: every pair kept mutual TLS after every step and every gate passed"
        + (f" ({len(reruns)} stop(s), each followed by a converging rerun)" if reruns else "")
    ) if passed else (
        f"FAIL: first broken at step {first} ({first_step['cluster']} {first_step['step']})" if first_step else "FAIL"
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>meshca rehearse: {_esc(doc['stack'])} / {_esc(doc['scenario'])}</title><style>{CSS}</style></head><body>",
        f"<h1>meshca rehearse: stack <code>{_esc(doc['stack'])}</code>, scenario <code>{_esc(doc['scenario'])}</code></h1>",
        f"<p><span class='verdict {'pass' if passed else 'fail'}'>{_esc(headline)}</span></p>",
        f"<p class='small'>{sm['steps']} steps applied of the plan's own step list; {sm['handshakes']} caller/callee verdicts "
        f"({sm['handshakesFailed']} failed) from {st['realHandshakes']} real mTLS handshakes; {sm['gatesFailed']} gates failed; "
        f"use case {_esc(settings['useCase'])}, clusters {_esc(', '.join(settings['clusters']))}, {settings['namespaces']} namespaces x "
        f"{settings['workloadsPerNamespace']} workloads, traffic {_esc(settings['traffic'])}, pre-flight {'on' if settings['preflight'] else 'off'}"
        + (f"; stopped at step {sm['stoppedAt']}: {_esc(sm['stopReason'])}" if sm["stoppedAt"] is not None else "")
        + "</p>"
        + (f"<p><b>Why the gates passed:</b> {_esc(gates_blind_text(sm['gatesBlind']))}</p>" if sm.get("gatesBlind") else ""),
        "<h2>Timeline</h2>",
        f"<div>{_legend(settings['revisions'])}</div>",
        f"<div class='scroll'>{_timeline(doc, snapshots)}</div>",
        "<h2>Assumptions this verdict rests on</h2>",
        "<p class='small'>Rules of the model that are inferred, not read from Istio's or asmcli's source, are switches; change one with <code>--assume NAME=VALUE</code> (docs/rehearsal.md, the model's assumptions).</p>",
        "<table><tr><th>switch</th><th>setting</th><th>default</th><th>rule (inferred)</th><th>the other setting</th></tr>",
    ]
    for s in sw.SWITCHES:
        value = doc["assumptions"].get(s.name, s.default)
        changed = " style='font-weight:600'" if value != s.default else ""
        parts.append(f"<tr><td><code>{_esc(s.name)}</code></td><td{changed}>{_esc(sw.shown(value))}</td><td>{_esc(sw.shown(s.default))}</td><td>{_esc(s.rule)}</td><td>{_esc(s.other)}</td></tr>")
    parts.append("</table>")
    if doc.get("whatIf"):
        parts.append("<h2>What each other setting predicts</h2><p class='small'>The same rehearsal, once per changed switch.</p>")
        parts.append("<table><tr><th>switch</th><th>setting</th><th>verdict</th><th>first broken step</th><th>failed pairs</th><th>failed gates</th></tr>")
        for w in doc["whatIf"]:
            fine = w["firstBrokenStep"] is None and w["completed"]
            verdict = f"<span style='color:{OK}'>PASS</span>" if fine else f"<span style='color:{FAIL}'>FAIL</span>"
            first = f"{w['firstBrokenStep']} {_esc(w['step'])}" if w["firstBrokenStep"] is not None else "-"
            parts.append(f"<tr><td><code>{_esc(w['switch'])}</code></td><td>{_esc(sw.shown(w['value']))}</td><td>{verdict}</td><td>{first}</td><td class='num'>{w['handshakesFailed']}</td><td class='num'>{w['gatesFailed']}</td></tr>")
        parts.append("</table>")
    if reruns:
        parts.append("<h2>Stops and reruns</h2><p class='small'>A fault stopped the route; the operator's remedy, then pulumi up again from the same position.</p>")
        parts.append("<table><tr><th>step</th><th>cluster</th><th>stopped by</th><th>remedy</th><th>rerun from</th></tr>")
        for i in reruns:
            parts.append(
                f"<tr class='bad'><td class='num'>{i['index']} <code>{_esc(i['step'])}</code></td><td>{_esc(i['cluster'])}</td>"
                f"<td>{_esc(i['reason'])}</td><td>{_esc(i['remedy'])}</td><td>{_esc(i['rerunFrom'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Route</h2><ol start='0' class='small'>")
    parts += [f"<li>{_esc(label)}</li>" for label in settings["routePoints"]]
    parts.append("</ol>")
    parts.append("<h2>Steps</h2><table><tr><th>#</th><th>cluster</th><th>phase</th><th>step</th><th>what changed</th><th>mTLS ok</th><th>failed</th><th>gates</th></tr>")
    for s in doc["steps"]:
        bad = s["handshakes"]["failed"] or s.get("error") or "fail" in s["gates"].values()
        changed = "<br>".join(_esc(c.split(": ", 1)[-1]) for c in s["changed"]) or ""
        if s.get("error"):
            changed = f"<b style='color:{FAIL}'>ERROR</b> {_esc(s['error'])}<br>" + changed
        if s.get("gateReason"):
            changed += f"<br><b style='color:{FAIL}'>gate</b> {_esc(s['gateReason'])}"
        if s.get("gateFirstReason"):
            changed += f"<br><b>gate passed at poll {s.get('gatePolls', 0)}; first check</b> {_esc(s['gateFirstReason'])}"
        if s.get("attempt"):
            changed = f"<i>rerun {s['attempt']}</i> " + changed
        if s["failedPairs"]:
            rows = "".join(f"<li>{_esc(p['client'])} &rarr; {_esc(p['server'])}: {_esc(p['reason'])}</li>" for p in s["failedPairs"][:200])
            more = f"<li>... {len(s['failedPairs']) - 200} more (see --json)</li>" if len(s["failedPairs"]) > 200 else ""
            changed += f"<details><summary>{len(s['failedPairs'])} failed pair(s)</summary><ul>{rows}{more}</ul></details>"
        gates = " ".join(f"<span style='color:{OK if v == 'pass' else FAIL}'>{_esc(k.split('.gate.')[-1])}: {v}</span>" for k, v in s["gates"].items())
        parts.append(
            f"<tr class='{'bad' if bad else ''}'><td class='num'>{s['index']}</td><td>{_esc(s['cluster'])}</td><td>{_esc(s['phase'])}{' (rollback)' if s['rollback'] else ''}</td>"
            f"<td><code>{_esc(s['step'])}</code><div class='small'>{_esc(s['title'])}</div></td><td>{changed}</td>"
            f"<td class='num'>{s['handshakes']['ok']}</td><td class='num'>{s['handshakes']['failed']}</td><td>{gates}</td></tr>"
        )
    parts.append("</table>")
    parts.append(
        f"<p class='small'>Real X.509 and real TLS (OpenSSL via Python ssl, both sides verifying); verdicts reused only for identical proxy states. "
        f"{st['pairsJudged']} pairs judged, {st['realHandshakes']} real handshakes, {st['certificatesIssued']} certificates issued, "
        f"{st['gateChecks']} gate checks with the real meshca check runner, {st['elapsedSeconds']:.2f}s.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
