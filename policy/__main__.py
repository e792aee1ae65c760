"""The meshca policy pack: `pulumi preview --policy-pack policy` (this call blocks; tests import
policy/rules.py instead)."""

from pulumi_policy import EnforcementLevel, PolicyPack

from rules import INITIAL_CONFIG, PACK_NAME, POLICIES

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
    initial_config=INITIAL_CONFIG,
    description="meshca: no stack may declare an unsafe step of the Citadel to Mesh CA migration.",
)
