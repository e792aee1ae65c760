"""Test infrastructure for meshca's end-to-end tests: local Kubernetes clusters on loopback.

Nothing here imports meshca; nothing here is shipped to operators. See testinfra/cluster.py.
"""
