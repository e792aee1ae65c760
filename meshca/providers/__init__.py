"""Dynamic providers. Importable and side-effect free: the engine unpickles them (dill, by
reference) in a separate `python -m pulumi.dynamic` process; clients are built inside methods."""
