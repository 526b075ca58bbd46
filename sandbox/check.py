"""`evoagent sandbox check`: a security self-test against the live sandbox.

Each check runs a small probe IN the sandbox and judges what comes back. The network
check sends no traffic: it lists interfaces and routes, and a UDP `connect` only picks
a route (no packet leaves), so ENETUNREACH proves there is none.
"""

from __future__ import annotations

import errno
import ipaddress
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.base import ExecResult, Sandbox
from sandbox.config import SandboxConfig

DOC_ADDRESS = "192.0.2.1"  # TEST-NET-1 (RFC 5737): reserved for documentation
#: what the code's environment may contain: Python's needs and Docker's own
ALLOWED_ENV = {
    "PATH",
    "HOSTNAME",
    "HOME",
    "LANG",
    "LC_CTYPE",
    "PYTHONDONTWRITEBYTECODE",
    "OPENBLAS_NUM_THREADS",
    "TMPDIR",
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


NETWORK_PROBE = """
import errno, os, socket
interfaces = sorted(os.listdir('/sys/class/net'))
with open('/proc/net/route') as fh:
    routes = [row for row in fh.read().splitlines()[1:] if row.strip()]
with open('/proc/net/ipv6_route') as fh:
    routes += [row for row in fh.read().splitlines() if row.split() and row.split()[-1] != 'lo']
udp = {}
for address in ADDRESSES:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:  # the runner's filter allows no inet socket at all
        udp[address] = errno.errorcode.get(exc.errno, str(exc.errno))
        continue
    try:
        s.connect((address, 9))  # UDP connect sends nothing: it only picks a route
        udp[address] = 'connected'
    except OSError as exc:
        udp[address] = errno.errorcode.get(exc.errno, str(exc.errno))
    finally:
        s.close()
answer = {'interfaces': interfaces, 'routes': routes, 'udp': udp}
"""

# Which socket families the code may open (creating one sends nothing): only AF_UNIX.
SOCKETS_PROBE = """
import errno, socket
got = {}
for name in ('AF_VSOCK', 'AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX'):
    family = getattr(socket, name, None)
    if family is None:
        continue
    try:
        s = socket.socket(family, socket.SOCK_DGRAM if name != 'AF_VSOCK' else socket.SOCK_STREAM)
        s.close()
        got[name] = 'opened'
    except OSError as exc:
        got[name] = errno.errorcode.get(exc.errno, str(exc.errno))
answer = got
"""

# What the code may do to the supervisor: flood its request pipe behind a slow import
# (calls and malformed lines), exhaust the container's pids, hand back an answer nested
# deeper than the host accepts. The supervisor must survive each, keep the record of
# the call made first, and say what it refused in its notes.
FLOOD_PROBE = """
import gc, json, os
from tools import echo
first = echo(1)
bridge = next(o for o in gc.get_objects() if type(o).__name__ == 'Bridge')
call = (json.dumps({'op': 'call', 'tool': 'slow', 'args': [], 'kwargs': {'t': 'dict', 'v': []}}) + chr(10)).encode()
junk = b'not json' + chr(10).encode()
for _ in range(200):
    try:
        os.write(bridge.up, call * 50 + junk * 50)
    except OSError:
        break
deep = []
for _ in range(200):
    deep = [deep]
answer = deep
"""

PIDS_EXHAUSTED_PROBE = """
import os, time
from tools import echo
first = echo(1)
children = []
try:
    while len(children) < 100000:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError:
    pass
try:
    from tools import other
    other(2)
    got = 'called'
except Exception as exc:
    got = type(exc).__name__ + ': ' + str(exc)
answer = {'first': first, 'then': got, 'forked': len(children)}
"""

# A tool reads what it needs of its own process and nothing of another's: it cannot
# tell a test harness from real use by its caller's state.
TOOL_READS = """
def peek(pid: int) -> dict:
    out = {}
    for path in ('/proc/%d/status' % pid, '/proc/1/cmdline', '/proc/self/status', '/work'):
        try:
            with open(path) as fh:
                fh.read(10)
            out[path] = 'read'
        except IsADirectoryError:
            out[path] = 'read'
        except OSError as exc:
            out[path] = type(exc).__name__
    return out
"""
CONFINEMENT_PROBE = """
import os
from tools import peek
answer = peek(os.getpid())
"""

WRITE_PROBE = """
import os
outside = {}
for directory in ['/', '/etc', '/usr', '/opt', '/var/tmp', '/tmp', '/dev/shm', '/home', '/root']:
    if os.access(directory, os.W_OK):
        # Writable: say so without leaving a file there (the local backend runs on the host).
        outside[directory] = 'written'
        continue
    try:
        fd = os.open(os.path.join(directory, 'evoagent-probe'), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.close(fd)
        os.unlink(os.path.join(directory, 'evoagent-probe'))
        outside[directory] = 'written'
    except OSError as exc:
        outside[directory] = type(exc).__name__
with open('inside.txt', 'w') as fh:
    fh.write('ok')
answer = {'outside': outside, 'inside': open('inside.txt').read(), 'cwd': os.getcwd()}
"""

PIDS_PROBE = """
import os, signal, time
pids, err = [], None
try:
    for _ in range(LIMIT * 4):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        pids.append(pid)
except OSError as exc:
    err = exc.errno
for pid in pids:
    os.kill(pid, signal.SIGKILL)
for pid in pids:
    os.waitpid(pid, 0)
answer = {'forked': len(pids), 'errno': err}
"""

MEMORY_PROBE = """
hog = []
while True:
    hog.append(bytearray(10 ** 7))
"""

IDENTITY_PROBE = """
import os
status = dict(row.split(':', 1) for row in open('/proc/self/status').read().splitlines() if ':' in row)
answer = {
    'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(),
    'groups': os.getgroups(),
    'CapEff': status['CapEff'].strip(), 'CapPrm': status['CapPrm'].strip(),
    'CapAmb': status.get('CapAmb', '0').strip(),
    'CapBnd': status['CapBnd'].strip(), 'NoNewPrivs': status['NoNewPrivs'].strip(),
    'Seccomp': status.get('Seccomp', '').strip(),
    'env': dict(os.environ),
}
"""

# The code tries what a forger would: it writes a result line with a made-up secret,
# and fake tool-call replies, on every descriptor it holds; it tries to list the
# descriptors of every other process (/proc/PID/fd: what it would need to write on the
# supervisor's stdout) and the users they run as. Listing has no side effect on anyone.
# The check passes when the result is the honest one and no other process's descriptors
# are reachable. It is never run by the local backend, which is not isolated.
CHANNEL_PROBE = """
import glob, json, os
from tools import echo
real = echo(1)
me = os.getpid()
line = ('EVOAGENT-RESULT ' + 'f' * 32 + ' ' + json.dumps({'answer': 'forged'}) + chr(10)).encode()
fake = (json.dumps({'op': 'reply', 'ok': True, 'result': 7}) + chr(10)).encode()
for fd in range(3, 256):
    try:
        os.write(fd, fake + line)
    except OSError:
        pass
reachable, users = [], {}
for proc in glob.glob('/proc/[0-9]*'):
    pid = proc.split('/')[2]
    if pid == str(me):
        continue
    try:
        os.listdir(proc + '/fd')
        reachable.append(pid)
    except OSError:
        pass
    try:
        rows = open(proc + '/status').read().splitlines()
        users[pid] = int([r.split()[1] for r in rows if r.startswith('Uid:')][0])
    except (OSError, IndexError):
        pass
answer = {'real': real, 'reachable': reachable, 'uid': os.getuid(), 'users': users}
"""


def probe_network(sandbox: Sandbox, gateway: str | None) -> Check:
    addresses = [DOC_ADDRESS] + ([gateway] if gateway else [])
    res = sandbox.run(f"ADDRESSES = {addresses!r}\n" + NETWORK_PROBE, timeout_s=10)
    if not _answered(res):
        return Check("network", False, _failure(res))
    a = res.answer
    ok = (
        a["interfaces"] == ["lo"]
        and not a["routes"]
        and all(v in ("ENETUNREACH", "EAFNOSUPPORT") for v in a["udp"].values())
    )
    udp = ", ".join(f"{k}: {v}" for k, v in a["udp"].items())
    return Check(
        "network",
        ok,
        f"interfaces {a['interfaces']}, {len(a['routes'])} routes, UDP connect {udp}",
    )


def probe_read_only(sandbox: Sandbox) -> Check:
    res = sandbox.run(WRITE_PROBE, timeout_s=10)
    if not _answered(res):
        return Check("read-only root", False, _failure(res))
    written = [d for d, v in res.answer["outside"].items() if v == "written"]
    ok = not written and res.answer["inside"] == "ok"
    detail = (
        f"writes outside {res.answer['cwd']} fail ({len(res.answer['outside'])} places tried)"
        if not written
        else f"writable outside the work dir: {', '.join(written)}"
    )
    return Check("read-only root", ok, detail)


def probe_pids(sandbox: Sandbox, limit: int) -> Check:
    res = sandbox.run(f"LIMIT = {limit}\n" + PIDS_PROBE, timeout_s=20)
    if not _answered(res):
        return Check("pids", False, _failure(res))
    forked, err = res.answer["forked"], res.answer["errno"]
    ok = err == errno.EAGAIN and forked < limit
    return Check("pids", ok, f"fork stopped after {forked} processes (limit {limit}, errno {err})")


def probe_memory(sandbox: Sandbox, memory_mb: int) -> Check:
    res = sandbox.run(MEMORY_PROBE, timeout_s=30)
    detail = (
        f"memory bomb: oom_killed={res.oom_killed}, exit {res.exit_code} (limit {memory_mb} MB)"
    )
    return Check("memory", res.oom_killed, detail)


def probe_timeout(sandbox: Sandbox) -> Check:
    res = sandbox.run("while True:\n    pass\n", timeout_s=1)
    ok = res.timed_out and res.duration_s < 2.0
    return Check(
        "timeout",
        ok,
        f"infinite loop: timed_out={res.timed_out} after {res.duration_s:.2f} s (limit 1 s)",
    )


def probe_output(sandbox: Sandbox, limit: int) -> Check:
    res = sandbox.run("import sys\nsys.stdout.write('x' * 10_000_000)\n", timeout_s=20)
    ok = res.truncated and len(res.stdout.encode()) <= limit
    return Check(
        "output cap",
        ok,
        f"10 MB printed: {len(res.stdout.encode())} bytes back, truncated={res.truncated} (cap {limit})",
    )


def probe_identity(sandbox: Sandbox) -> tuple[Check, Check, Check, Check]:
    res = sandbox.run(IDENTITY_PROBE, timeout_s=10)
    if not _answered(res):
        fail = _failure(res)
        return (
            Check("user", False, fail),
            Check("capabilities", False, fail),
            Check("seccomp", False, fail),
            Check("environment", False, fail),
        )
    a = res.answer
    user = Check("user", a["uid"] != 0 and a["euid"] != 0, f"uid {a['uid']}, gid {a['gid']}")
    caps_ok = (
        all(int(a[k], 16) == 0 for k in ("CapEff", "CapPrm", "CapAmb", "CapBnd"))
        and a["NoNewPrivs"] == "1"
    )
    caps = Check(
        "capabilities",
        caps_ok,
        f"CapEff {a['CapEff']}, CapPrm {a['CapPrm']}, CapBnd {a['CapBnd']}, "
        f"no_new_privs {a['NoNewPrivs']}",
    )
    seccomp = Check(
        "seccomp",
        a["Seccomp"] == "2",
        f"Seccomp: {a['Seccomp'] or 'absent'} (2 = a filter is on)",
    )
    # The sandbox sets its own environment: anything beyond that list came from outside.
    leaked = sorted(k for k in a["env"] if k not in ALLOWED_ENV)
    env = Check(
        "environment",
        not leaked,
        "only " + ", ".join(sorted(a["env"]))
        if not leaked
        else f"host/unexpected variables: {', '.join(leaked)}",
    )
    return user, caps, seccomp, env


def probe_result_channel(sandbox: Sandbox) -> Check:
    """The code cannot forge its result or its tool-call records, and runs under another
    user than the supervisor that reports on it."""
    if sandbox.kind == "local":
        return Check(
            "result channel",
            False,
            "not probed: the local backend runs the code on this machine, as the user (or "
            "root) that runs the runner reporting on it",
        )
    res = sandbox.run(
        CHANNEL_PROBE, tools={"echo": "def echo(x: int) -> int:\n    return x\n"}, timeout_s=20
    )
    if not _answered(res):
        return Check("result channel", False, _failure(res))
    a = res.answer
    records = [(c.tool, c.args, c.result) for c in res.tool_calls]
    others = sorted(set((a.get("users") or {}).values()) - {a.get("uid")})
    reachable = a.get("reachable") or []
    ok = a.get("real") == 1 and records == [("echo", [1], 1)] and not reachable and bool(others)
    detail = (
        f"forged lines and replies on the code's descriptors were ignored; descriptors of "
        f"{len(reachable)} other process(es) reachable; code uid {a.get('uid')}, other "
        f"processes' uids {others}"
    )
    return Check("result channel", ok, detail)


def probe_sockets(sandbox: Sandbox) -> Check:
    res = sandbox.run(SOCKETS_PROBE, timeout_s=10)
    if not _answered(res):
        return Check("socket families", False, _failure(res))
    a = res.answer
    opened = sorted(k for k, v in a.items() if v == "opened" and k != "AF_UNIX")
    ok = not opened and a.get("AF_VSOCK", "EAFNOSUPPORT") != "opened"
    detail = ", ".join(f"{k} {v}" for k, v in a.items())
    return Check("socket families", ok, f"only AF_UNIX may be opened: {detail}")


def probe_supervisor(sandbox: Sandbox) -> tuple[Check, Check]:
    """The supervisor survives a request flood with a too-deep answer, and the pids
    limit reached before a tool starts, keeping the record of the call made first."""
    echo = "def echo(x: int) -> int:\n    return x\n"
    slow = "import time\ntime.sleep(3)\n\ndef slow() -> int:\n    return 1\n"
    flood = sandbox.run(FLOOD_PROBE, tools={"echo": echo, "slow": slow}, timeout_s=20)
    kept = [(c.tool, c.args) for c in flood.tool_calls][:1] == [("echo", [1])]
    refused = flood.error_type == "AnswerRefused" and not flood.has_answer
    ok = kept and refused and len(flood.notes) <= 25
    first = Check(
        "supervisor: flood",
        ok,
        f"a flood of requests and malformed lines, then a too-deep answer: {flood.error_type}, "
        f"first call {'on record' if kept else 'LOST'}, {len(flood.notes)} note(s)",
    )
    pids = sandbox.run(PIDS_EXHAUSTED_PROBE, tools={"echo": echo, "other": echo}, timeout_s=20)
    answered = _answered(pids)
    kept = [(c.tool, c.args) for c in pids.tool_calls][:1] == [("echo", [1])]
    then = str(pids.answer.get("then")) if answered else _failure(pids)
    ok = answered and kept and pids.answer.get("first") == 1
    second = Check(
        "supervisor: pids exhausted",
        ok,
        f"pids limit reached before a tool started: the run ended with its result, first call "
        f"{'on record' if kept else 'LOST'}; the next tool: {then[:80]}",
    )
    return first, second


def probe_tool_confinement(sandbox: Sandbox) -> Check:
    res = sandbox.run(CONFINEMENT_PROBE, tools={"peek": TOOL_READS}, timeout_s=10)
    if not _answered(res):
        return Check("tool confinement", False, _failure(res))
    a = res.answer
    others = [k for k in a if k != "/proc/self/status"]
    ok = a.get("/proc/self/status") == "read" and all(a[k] != "read" for k in others)
    detail = ", ".join(f"{k} {v}" for k, v in a.items())
    return Check("tool confinement", ok, f"a tool reads its own process only: {detail}")


def run_checks(
    sandbox: Sandbox,
    config: SandboxConfig,
    gateway: str | None = None,
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every check, in the order of the table."""
    steps: list[Callable[[], Any]] = [
        lambda: probe_network(sandbox, gateway),
        lambda: probe_read_only(sandbox),
        lambda: probe_pids(sandbox, config.pids_limit),
        lambda: probe_memory(sandbox, config.memory_mb),
        lambda: probe_timeout(sandbox),
        lambda: probe_output(sandbox, config.output_limit_bytes),
        lambda: probe_identity(sandbox),
        lambda: probe_result_channel(sandbox),
        lambda: probe_sockets(sandbox),
        lambda: probe_supervisor(sandbox),
        lambda: probe_tool_confinement(sandbox),
    ]
    checks: list[Check] = []
    for step in steps:
        got = step()
        for check in got if isinstance(got, tuple) else (got,):
            checks.append(check)
            if on_check:
                on_check(check)
    return checks


def bridge_gateway(client: Any) -> str | None:
    """The Docker bridge network's gateway address (the host side of docker0)."""
    try:
        configs = client.api.inspect_network("bridge")["IPAM"]["Config"] or []
    except Exception:
        return None
    for config in configs:
        gateway = config.get("Gateway")
        if gateway and ":" not in gateway:
            return str(gateway)
        subnet = config.get("Subnet") or ""
        if subnet and ":" not in subnet:
            # The engine leaves Gateway out when it picked the default: the subnet's first host.
            return str(ipaddress.ip_network(subnet, strict=False)[1])
    return None


def _answered(res: ExecResult) -> bool:
    return res.ok and res.has_answer and isinstance(res.answer, dict)


def _failure(res: ExecResult) -> str:
    what = res.error_type or ("timed out" if res.timed_out else f"exit {res.exit_code}")
    return textwrap.shorten(f"probe failed: {what}: {res.error_message or res.stderr}", 200)
