"""The simulated mesh and the rehearsal (``meshca rehearse``).

- ``switches``: the model's inferred rules as named switches with defaults;
- ``ca``, ``mesh``, ``start``: real X.509 material, clusters/istiods/namespaces/workloads/proxies,
  and a stack's starting point;
- ``emulator``: kubectl/asmcli/meshca argv over the simulated state;
- ``source``: a simulated cluster as a ``ProxySource`` for the real trust gates;
- ``tls``, ``traffic``: real mTLS handshakes over memory BIOs, and who calls whom;
- ``engine``, ``scenarios``, ``builtin``: the route walk, the built-in scenarios, the built-in mesh;
- ``report``, ``cli``: the table, the HTML page, the ``rehearse`` subcommand.
"""
