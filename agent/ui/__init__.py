"""`evoagent ui`: the library, its curation and the runs of one home, in a browser.

Server-rendered pages (Starlette + Jinja2, autoescaped) over the same library functions
the CLI calls, so either sees the other's writes at once; one small vendored-free script
(`static/live.js`, written here) follows a running stream. See agent/ui/app.py.
"""

from agent.ui.app import create_app

__all__ = ["create_app"]
