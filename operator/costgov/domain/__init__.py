"""The pure cost engine: quantities, money, pricing, costing, policies, approvals, budgets.

No kopf, kubernetes, Prometheus client, YAML, files or clock in here (import-linter checks
it): time comes in as an argument, I/O stays in adapters.
"""
