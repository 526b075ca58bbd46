"""evoagent's agent: the LangGraph planner → executor → verifier graph and the CLI.

Front door: `agent.graph.build_graph(...)`; console script `evoagent` = `agent.cli:app`.
Importing this package loads nothing heavy.
"""
