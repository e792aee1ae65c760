"""Unknown values as the engine really delivers them (issue 9 finding 8, the unknown checks).

To the policy pack (pulumi/pulumi at 1b5949891b; pulumi-policy 1.21.0):
- the Python SDK sends every unknown as the string sentinel (sdk/python/lib/pulumi/runtime/rpc.py:62
  ``UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"``); the engine reads it as a computed string
  (sdk/go/common/resource/plugin/rpc.go:652-653 ``case UnknownStringValue: elem, unknown =
  resource.NewProperty(""), true``) and marshals it to the analyzer with ``KeepUnknowns: true``
  (pkg/resource/plugin/analyzer_plugin.go:306-307 and :350-351) as the typed sentinel of its
  element (rpc.go:291-304 ``marshalUnknownProperty``): for a value from the program always the
  string sentinel, for a provider's preview output the sentinel of its type (rpc.go:67-85);
- pulumi-policy keeps these strings as they are (pulumi_policy/deserialize.py) and wraps the
  props in ``unknown_checking_proxy`` (pulumi_policy/policy.py:997-998, :1049-1050), which
  raises ``UnknownValueError`` on reading one; the servicer reports that as an advisory "can't
  run policy ... during preview" (policy.py:1012-1022).
To a dynamic provider's ``check``/``diff`` the same sentinel arrives as ``pulumi.output.Unknown``:
sdk/python/lib/pulumi/dynamic/__main__.py:103-104 and :167-168
``rpc.deserialize_properties(request.news, True)``, and rpc.py:1128-1129 ``if value == UNKNOWN:
return Unknown() if settings.is_dry_run() or keep_unknowns else None``. A provider comparing with
the string never sees it.
"""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi_policy.proxy import UnknownValueError

from harness import run_program
from policy import rules
from policy import testing as T
from test_policy_program import overrides_at, positions, upstream_at


# sdk/go/common/resource/plugin/rpc.go:67-85, transcribed.
ENGINE_SENTINELS = {
    "bool": "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "number": "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "string": "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    "array": "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "asset": "030794c1-ac77-496b-92df-f27374a8bd58",
    "archive": "e48ece36-62e2-4504-bad9-02848725956a",
    "object": "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
}


def test_the_pack_knows_every_sentinel_the_engine_sends():
    assert all(rules.is_unknown(s) for s in ENGINE_SENTINELS.values())
    assert not rules.is_unknown(repr(Unknown())) and not rules.is_unknown("unknown")


def _engine_run(index: int, preview: bool):
    config, (position,) = positions("dev", index)
    overrides = overrides_at(config, position)
    result = run_program("dev", overrides, stack_outputs=upstream_at("dev", overrides), preview=preview)
    assert result.error is None, result.error
    return result


def test_a_preview_of_the_program_feeds_the_pack_the_engines_sentinel_and_up_judges_known_values():
    # C2 at its first preview: the backups it carries are computed by C1 (a dynamic provider
    # without preview support), so they are unknown; the deletion rule cannot decide yet.
    result = _engine_run(13, preview=True)
    deletion = next(r for r in result.resources if r.type == rules.CA_DELETION)
    assert deletion.wire_inputs["backups"] == [ENGINE_SENTINELS["string"]] * 2
    diags = T.analyze_engine(T.servicer(), result.resources)
    assert T.mandatory(diags) == []
    notes = [d for d in T.advisory(diags) if "during preview" in d.message]
    assert [d.policy for d in notes] == ["ca-secret-removal-guarded"]
    assert "string value at .backups can't be known during preview" in notes[0].message
    # In up the same resource arrives with known backups and is judged on them.
    inputs, _ = T.engine_specs(_engine_run(13, preview=False).resources)
    known = next(s for s in inputs if s.type == rules.CA_DELETION)
    assert T.mandatory(T.analyze(T.servicer(), known)) == []
    known.props["backups"] = known.props["backups"][1:]
    assert T.codes(T.mandatory(T.analyze(T.servicer(), known))) == ["MCA0626"]


@pytest.mark.parametrize("sentinel", ["string", "object"])
def test_an_unknown_namespace_map_leaves_the_stack_reports_undecided(sentinel):
    """The MeshcaStack's map unknown (a program value: the string sentinel; a provider's: the
    object one): the removal report must not pass on the namespaces it cannot see."""
    _, outputs = T.engine_specs(_engine_run(12, preview=False).resources)
    stack = next(s for s in outputs if s.type == rules.MESHCA_STACK)
    stack.props["namespaces"] = ENGINE_SENTINELS[sentinel]
    outputs = [s for s in outputs if s.type not in (rules.NAMESPACE_REVISION, rules.NAMESPACE_PATCH)]
    with pytest.raises(UnknownValueError):
        T.messages(rules.removal_report, T.stack_args(outputs))


def _as_the_dynamic_host_delivers(props: dict) -> dict:
    """``props`` (with the SDK's sentinel where a value is unknown) through the engine and the
    dynamic provider host: a Struct, deserialized with keep_unknowns (dynamic/__main__.py:167-168)."""
    wire = struct_pb2.Struct()
    wire.update(props)
    return rpc.deserialize_properties(wire, True)


def test_ca_secret_providers_check_copes_with_the_unknowns_the_dynamic_host_delivers():
    from meshca.providers.ca_secrets import CaSecretBackupProvider, CaSecretDeletionProvider

    news = _as_the_dynamic_host_delivers({"backups": rpc.UNKNOWN, "argv": rpc.UNKNOWN})
    assert isinstance(news["backups"], Unknown)
    assert CaSecretDeletionProvider().check({}, news).failures == []
    news = _as_the_dynamic_host_delivers({"backups": [rpc.UNKNOWN, {"secret": "cacerts", "fileSha256": rpc.UNKNOWN}], "argv": ["kubectl", "delete", "secret", "cacerts"]})
    assert CaSecretDeletionProvider().check({}, news).failures == []
    news = _as_the_dynamic_host_delivers({"cluster": rpc.UNKNOWN, "secret": "cacerts", "file": rpc.UNKNOWN, "argv": rpc.UNKNOWN})
    assert CaSecretBackupProvider().check({}, news).failures == []


def test_trust_gate_check_copes_with_the_unknowns_the_dynamic_host_delivers():
    from meshca.providers.trust_gate import INPUTS, TrustGateProvider

    for key in INPUTS:
        news = _as_the_dynamic_host_delivers({"check": "root-cert", "require": ["MESHCA"], key: rpc.UNKNOWN})
        failures = TrustGateProvider().check({}, news).failures
        assert [f.property for f in failures if f.property == key] == [], key
