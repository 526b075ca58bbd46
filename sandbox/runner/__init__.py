"""The in-sandbox runner: one job in, one result line out. Standard library only.

The image copies this folder to /opt/evoagent/runner/ (and `LocalSandbox` runs it from
the source tree); every process starts as `python3 -I .../runner/__main__.py ROLE`:

- `supervise` (supervisor.py): the trusted side inside the sandbox. Reads ONE job line,
  runs the code, brokers every library tool call, and writes ONE line
  `EVOAGENT-RESULT <secret> <json>`. In a container it is root with only the SETUID,
  SETGID, SETPCAP and KILL capabilities.
- `code` (code_role.py): the job's code, in a fresh interpreter under another user. It
  never sees the job line nor the secret.
- `tool` (tool_role.py): one library tool module, in its own interpreter under a uid of
  its own, confined further (confine.py) so it cannot read other processes' state.

The host imports only `codec.py` (plain data, the limits both sides enforce): nothing
else of this package runs outside the sandbox.
"""
