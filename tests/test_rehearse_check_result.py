"""A gate's ``meshca check --json`` result in the rehearsal writes its stdout only when read
(issue 13): it is then exactly ``json.dumps`` of the document, as before."""

from __future__ import annotations

import json

from meshca.sim.engine import CheckResult


def test_stdout_is_the_document_json_when_read():
    doc = {"check": "root-cert", "ok": False, "pods": [{"namespace": "a", "pod": "b", "roots": ["CITADEL"]}], "reason": "x é"}
    r = CheckResult(1, stderr="x é", document=doc)
    assert r.__dict__.get("_stdout") is None  # not written yet
    assert r.stdout == json.dumps(doc) and r.stdout is r.stdout
    assert (r.rc, r.ok, r.stderr, r.document) == (1, False, "x é", doc)
    assert CheckResult(0, stdout="given", document=doc).stdout == "given"
