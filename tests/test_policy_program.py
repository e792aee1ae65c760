"""The policy pack over what the real program registers (tests/harness.py runs
components/program.py under Pulumi mocks): the shipped stacks at several positions pass, and
hand-mutated configs and resources are refused with coded lines, through the analyzer
servicer (Analyze per resource, then AnalyzeStack), as a preview would run them."""

from __future__ import annotations

import pytest

from harness import ROOT, run_program
from meshca import plan as planmod
from meshca.config import load_stack
from policy import rules
from policy import testing as T
from policy.testing import Spec

OLD, REV1, REV2 = "default", "asm-11910-9-distribute-root", "asm-11910-9-meshca-ca-migration"


def positions(stack: str, *indexes: int):
    config = load_stack(ROOT, stack)
    route = planmod.route(config)
    return config, [route[i] for i in indexes]


def overrides_at(config, position, rollback=False) -> dict:
    mapping = {}
    for ns in config.namespaces:
        revision = position.namespace_map[ns.name]
        mapping[ns.name] = {"revision": revision, "labels": dict(ns.labels)} if ns.labels else revision
    return {"phase": position.phase, "rollback": rollback, "namespaces": mapping}


def upstream_at(stack: str, overrides: dict | None) -> dict:
    """Outputs of the stack's upstream, level with it (a stack may not run ahead of it)."""
    config = load_stack(ROOT, stack)
    if not config.upstream_stack:
        return {}
    phase = (overrides or {}).get("phase", config.phase)
    mapping = {ns: (v["revision"] if isinstance(v, dict) else v) for ns, v in ((overrides or {}).get("namespaces") or config.namespace_map).items()}
    names = {config.old_revision: "old", config.rev1: "rev1", config.rev2: "rev2"}
    return {config.upstream_stack: {"phase": phase, "rollback": False, "namespaceRoles": {ns: names[r] for ns, r in mapping.items()}}}


def reported(diags) -> list[str]:
    """What the after-the-fact stack rules report (advisory: the engine runs stack policies
    after every step of `up`, so nothing that must block is a stack rule; issue 9 finding 7)."""
    return [line for d in diags if d.policy in rules.AFTER_THE_FACT for line in d.lines]


def preview(stack: str, overrides: dict | None = None, config: dict | None = None):
    """The specs AnalyzeStack gets (each resource's outputs, as the engine sends them), and
    what the preview reports (Analyze on inputs, AnalyzeStack on outputs)."""
    result = run_program(stack, overrides, stack_outputs=upstream_at(stack, overrides))
    assert result.error is None, result.error
    specs = T.specs_from_registered(result.resources, "outputs")
    return specs, T.analyze_engine(T.servicer(config), result.resources)


# dev: 12 namespaces in batches of 3 -> route 0 baseline, 1-5 A, 6 A-done, 7-11 B, 12 B-done, 13 C.
CASES = [
    ("dev", 0, False),
    ("dev", 2, False),
    ("dev", 3, True),  # A6 rollback of two batches
    ("dev", 5, False),
    ("dev", 6, False),
    ("dev", 8, False),
    ("dev", 9, True),  # B5 rollback
    ("dev", 12, False),
    ("dev", 13, False),  # phase C: backups, the workload-cert gate, the CA secret deletion
    ("csm116", 3, False),  # upgrade use case: labelled old revision, a namespace with extra labels
    ("csm116", 4, True),
    ("staging", 1, False),  # two clusters, behind its upstream dev
    ("csm116", 8, False),  # old-root-removed of the upgrade use case
]


@pytest.mark.parametrize("stack, index, rollback", CASES, ids=[f"{s}-{i}{'-rollback' if r else ''}" for s, i, r in CASES])
def test_shipped_stacks_pass_at_every_kind_of_position(stack, index, rollback):
    config, (position,) = positions(stack, index)
    specs, diags = preview(stack, overrides_at(config, position, rollback))
    assert T.mandatory(diags) == []
    assert all(d.policy == "batch-share" for d in T.advisory(diags)), [d.message for d in T.advisory(diags)]
    assert reported(diags) == []
    # The pack did look at the program's resources (not an empty run).
    types = {s.type for s in specs}
    assert "meshca:index:MeshcaStack" in types and "pulumi-python:dynamic/meshca:PhaseGuard" in types


def test_two_namespaces_of_five_in_one_batch_is_advisory_only():
    config, (position,) = positions("csm116", 2)
    _, diags = preview("csm116", overrides_at(config, position))
    assert T.mandatory(diags) == []
    assert [line.split()[1] for d in T.advisory(diags) for line in d.lines] == ["MCA0640"]
    _, diags = preview("csm116", overrides_at(config, position), {"batch-share": {"maxBatchShare": 0.4}})
    assert T.advisory(diags) == []


def test_config_adding_the_other_cas_migration_option_is_refused():
    # Config validation refuses it first (MCA0144), so nothing reaches the pack; the pack's own
    # rule for such an install (MCA0612) is tested on hand-built props in test_policy_rules.
    from harness import run_program

    result = run_program("dev", {"extraOptions": ["ca-migration-meshca"]})
    assert "nothing was registered" in str(result.error) and result.resources == []


def _mesh_ca_batch_one():
    config, (position,) = positions("dev", 8)
    return preview("dev", overrides_at(config, position))[0]


def test_program_rev2_install_without_its_gate_is_refused():
    specs = _mesh_ca_batch_one()
    install = next(s for s in specs if s.name.endswith(f"B1.install.{REV2}"))
    assert install.depends_on, "the program makes REV2's install wait for its gate"
    install.depends_on = []
    diags = T.analyze_stack(T.servicer(), specs)
    assert [line.split()[1] for line in reported(diags)] == ["MCA0624"]


def test_program_phase_b_with_a_namespace_back_on_the_old_revision_is_refused():
    specs = _mesh_ca_batch_one()
    stack = next(s for s in specs if s.type == "meshca:index:MeshcaStack")
    stack.props["namespaces"]["ads"] = OLD
    codes = {line.split()[1] for line in reported(T.analyze_stack(T.servicer(), specs))}
    assert codes == {"MCA0625", "MCA0622"}  # REV2 starts signing; the old istiod is already removed


def test_program_label_patch_for_removed_revision_is_refused():
    specs = _mesh_ca_batch_one()
    patch = next(s for s in specs if s.type == "kubernetes:core/v1:NamespacePatch" and s.props["metadata"]["name"] == "frontend")
    patch.props["metadata"]["labels"] = {"istio-injection": "enabled"}
    codes = {line.split()[1] for line in reported(T.analyze_stack(T.servicer(), specs))}
    # The label selects "default": removed (0621), removed under a namespace (0622), and REV2
    # signs while that namespace trusts Citadel only (0625).
    assert codes == {"MCA0621", "MCA0622", "MCA0625"}


def test_program_gateway_left_on_a_removed_revision_is_refused():
    config, (position,) = positions("dev", 12)  # mesh-ca-done: REV1 removed
    specs = preview("dev", overrides_at(config, position))[0]
    # the canary is a cloned Deployment (Commands, issue 9 finding 9): its component states the revision
    canary = next(s for s in specs if s.type == "meshca:index:GatewayRevision")
    canary.props["revision"] = REV1
    codes = {line.split()[1] for line in reported(T.analyze_stack(T.servicer(), specs))}
    assert codes == {"MCA0623"}


def test_program_phase_c_with_a_namespace_back_on_rev1_is_refused():
    """Done-when, on the program's own resources: the CA secrets go while a namespace is on REV1."""
    config, (position,) = positions("dev", 13)
    specs = preview("dev", overrides_at(config, position))[0]
    assert any(s.type == "pulumi-python:dynamic/meshca:CaSecretDeletion" for s in specs)
    stack = next(s for s in specs if s.type == "meshca:index:MeshcaStack")
    stack.props["namespaces"]["cart"] = REV1
    codes = {line.split()[1] for line in reported(T.analyze_stack(T.servicer(), specs))}
    assert codes == {"MCA0628", "MCA0622"}  # and REV1's istiod is already removed under it


def test_program_ca_secret_deletion_without_its_backups_is_refused():
    config, (position,) = positions("dev", 13)
    specs = preview("dev", overrides_at(config, position))[0]
    deletion = next(s for s in specs if s.type == "pulumi-python:dynamic/meshca:CaSecretDeletion")
    deletion.depends_on = [d for d in deletion.depends_on if "backup" not in d]
    backups = [s for s in specs if s.type == "pulumi-python:dynamic/meshca:CaSecretBackup"]
    for b in backups:  # nothing else the deletion waits for may lead to them either
        b.depends_on = []
    specs = [s for s in specs if s not in backups] + [Spec(b.type, b.name + ".elsewhere", b.props) for b in backups]
    codes = [line.split()[1] for line in reported(T.analyze_stack(T.servicer(), specs))]
    assert sorted(codes) == ["MCA0626", "MCA0626"]
