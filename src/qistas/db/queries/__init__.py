"""The statements of the annotation loop, one module per area, built once at import.

Each is a ``Prepared`` statement (``db/prepared.py``): written against the tables, compiled
once per dialect, run on the driver's cursor, its rows returned as small named tuples or
detached objects. The domain modules of the same name run them; they hold no rules.
"""
