"""The graph's nodes, one module each: recall, plan, act, verify, learn.

Each node is `node(state, run) -> dict` (the fields it changes); `agent/graph.py`
binds `run` and wires them.
"""

from agent.nodes.act import act
from agent.nodes.learn import learn
from agent.nodes.plan import plan
from agent.nodes.recall import recall
from agent.nodes.verify import verify

__all__ = ["act", "learn", "plan", "recall", "verify"]
