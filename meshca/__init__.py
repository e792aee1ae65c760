"""meshca: move Cloud Service Mesh from Istio CA (Citadel) to Mesh CA with zero downtime.

Flow: config (validated) -> plan (pure Python) -> consumers (Pulumi components, policy pack,
rehearsal, CLI).
"""

__version__ = "0.1.0"
