# Test-only (tests/code_audit_plugin.py puts this directory on PYTHONPATH for the test run):
# record the coded messages a meshca subprocess constructs. Does nothing outside the tests.
try:
    import meshca_code_record

    meshca_code_record.install()
except Exception:  # noqa: BLE001 - never break a process over the audit
    pass
