"""Typer command functions mounted by `agent/cli.py`."""
