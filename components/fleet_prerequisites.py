"""FleetPrerequisites: what ``asmcli --enable_all`` would do, declared with pulumi-gcp.

Used when meshca:prerequisites is ``pulumi``: the Google APIs (mesh.googleapis.com on the
cluster project; meshconfig, Mesh CA, fleet, GKE and IAM credentials APIs on the fleet
project) and one fleet membership per cluster. asmcli then runs without --enable_all and
keeps the parts pulumi-gcp cannot express (IAM roles for the installer, cluster roles and
labels, mesh config init). Nothing here is ever disabled or deleted by `pulumi destroy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from meshca.config import StackConfig

TYPE = "meshca:index:FleetPrerequisites"
FLEET_APIS = (
    "meshconfig.googleapis.com",
    "meshca.googleapis.com",
    "gkehub.googleapis.com",
    "container.googleapis.com",
    "iamcredentials.googleapis.com",
)
CLUSTER_APIS = ("mesh.googleapis.com",)


@dataclass
class FleetPrerequisitesArgs:
    """Args of FleetPrerequisites."""

    config: StackConfig
    """The validated stack config."""


class FleetPrerequisites(pulumi.ComponentResource):
    memberships: pulumi.Output[list]

    def __init__(self, name: str, args: FleetPrerequisitesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        c = args.config
        state = {"fleetProject": c.fleet_project}
        super().__init__(TYPE, name, state, opts)
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        apis = []
        for project, services in ((c.fleet_project, FLEET_APIS), (c.clusters[0].project, CLUSTER_APIS)):
            for service in services:
                apis.append(
                    gcp.projects.Service(
                        f"{project}.{service}", project=project, service=service, disable_on_destroy=False, opts=keep
                    )
                )
        memberships = []
        for cl in c.clusters:
            link = f"projects/{cl.project}/locations/{cl.location}/clusters/{cl.name}"
            # A cluster already in the fleet (Istio on GKE clusters often are) is imported:
            # creating its membership again fails. pulumi-gcp's import id:
            # projects/{project}/locations/{location}/memberships/{membership_id}.
            existing = cl.fleet_membership
            imported = f"projects/{c.fleet_project}/locations/global/memberships/{existing}" if existing else None
            memberships.append(
                gcp.gkehub.Membership(
                    f"{cl.name}.membership",
                    project=c.fleet_project,
                    membership_id=existing or cl.name,
                    location="global",
                    endpoint=gcp.gkehub.MembershipEndpointArgs(
                        gke_cluster=gcp.gkehub.MembershipEndpointGkeClusterArgs(resource_link=f"//container.googleapis.com/{link}")
                    ),
                    authority=gcp.gkehub.MembershipAuthorityArgs(issuer=f"https://container.googleapis.com/v1/{link}"),
                    opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=apis, import_=imported),
                )
            )
        self.memberships = pulumi.Output.all(*[m.membership_id for m in memberships])
        self.register_outputs({**state, "memberships": self.memberships})
