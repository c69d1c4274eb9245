"""Renting a GPU and living with it: quotes, consent, budgets, the billed-price check, the spend ledger in
``gpu.json``, boot watch, reconcile with each cloud's own list, teardown, and the answers the gpu tools give.

Code outside ``providers`` imports these names from ``ategnatos_mcp.providers``.
"""
