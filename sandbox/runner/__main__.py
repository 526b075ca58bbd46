"""`python3 -I .../runner/__main__.py ROLE ...`: start one role of the runner.

`-I` keeps the interpreter from adding this folder to `sys.path`, so the package's
parent is added here, long enough to import the role, and taken out again before any
code of a job runs (the job's code never finds the runner's modules on its path).
"""

import os
import sys


def main(argv: list[str]) -> int:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, here)
    try:
        role = argv[1] if len(argv) > 1 else "supervise"
        if role == "code":
            from runner.code_role import code_main as entry
        elif role == "tool":
            from runner.tool_role import tool_main as entry
        elif role == "supervise":
            from runner.supervisor import supervise_main as entry
        else:
            sys.stderr.write(f"runner: unknown role {role!r}\n")
            return 2
    finally:
        sys.path.remove(here)
    return entry(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
