"""Experiments built on the core: the comparison, the paper's tables and figures, their reports and plots.

Nothing in the core imports this package (a contract in pyproject.toml, checked in CI by `lint-imports`).
"""
