"""meshca's Pulumi program. Everything lives in components/ and meshca/; see README.md."""

from components.program import run

run()
