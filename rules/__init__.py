"""Site rules: decisions that combine sources (power, PLC states, cameras, commands).

Rules consume committed records and produce new records; they never reach into a driver or a
camera worker, and ``drivers/`` and ``vision/`` hold no cross-source logic. See
docs/rules.md and ``rules.base.Rule``.
"""
