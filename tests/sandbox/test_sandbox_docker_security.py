"""Must hold (real Docker): no network, read-only outside the work dir, no host environment,
not root, no capabilities, no_new_privs. No test sends a packet anywhere."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from sandbox.check import ALLOWED_ENV, bridge_gateway

pytestmark = pytest.mark.docker


def answer_of(sandbox: Any, code: str) -> Any:
    res = sandbox.run(code, timeout_s=20)
    assert res.ok, res.observation()
    return res.answer


def test_only_loopback_and_no_routes(docker_sandbox: Any) -> None:
    a = answer_of(
        docker_sandbox,
        "import os\n"
        "with open('/proc/net/route') as fh:\n"
        "    v4 = [r for r in fh.read().splitlines()[1:] if r.strip()]\n"
        "with open('/proc/net/ipv6_route') as fh:\n"
        "    v6 = [r for r in fh.read().splitlines() if r.split() and r.split()[-1] != 'lo']\n"
        "answer = {'ifaces': sorted(os.listdir('/sys/class/net')), 'v4': v4, 'v6': v6}\n",
    )
    assert a == {"ifaces": ["lo"], "v4": [], "v6": []}


def test_udp_connect_to_documentation_address_and_bridge_gateway_is_unreachable(
    docker_sandbox: Any,
) -> None:
    gateway = bridge_gateway(docker_sandbox.client)
    assert gateway, "the Docker engine has no bridge network gateway"
    # A UDP connect() only selects a route: no packet is sent, even where one exists. The
    # runner's seccomp filter refuses the inet socket itself (only AF_UNIX may be opened).
    a = answer_of(
        docker_sandbox,
        f"import socket\nout = {{}}\nfor addr in ['192.0.2.1', {gateway!r}]:\n"
        "    try:\n"
        "        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "        s.connect((addr, 9))\n"
        "        out[addr] = 0\n"
        "    except OSError as exc:\n"
        "        out[addr] = exc.errno\n"
        "answer = out\n",
    )
    assert a == {"192.0.2.1": errno.EAFNOSUPPORT, gateway: errno.EAFNOSUPPORT}


def test_writes_outside_the_work_dir_fail(docker_sandbox: Any) -> None:
    a = answer_of(
        docker_sandbox,
        "import os\nout = {}\n"
        "for d in ['/', '/etc', '/usr', '/opt/evoagent', '/tmp', '/var/tmp', '/dev/shm', '/root', '/home']:\n"
        "    try:\n"
        "        open(os.path.join(d, 'probe'), 'w').close()\n"
        "        out[d] = 'written'\n"
        "    except OSError as exc:\n"
        "        out[d] = exc.errno\n"
        "open('inside.txt', 'w').write('ok')\n"
        "answer = {'outside': out, 'inside': open('inside.txt').read(), 'cwd': os.getcwd()}\n",
    )
    assert a["cwd"] == "/work" and a["inside"] == "ok"
    assert all(v != "written" for v in a["outside"].values()), a["outside"]
    assert a["outside"]["/etc"] in (errno.EROFS, errno.EACCES)


def test_work_dir_is_size_capped(docker_sandbox: Any) -> None:
    limit_mb = docker_sandbox.config.tmpfs_mb
    res = docker_sandbox.run(
        f"with open('big', 'wb') as fh:\n    for _ in range({limit_mb + 8}):\n"
        "        fh.write(b'x' * 1024 * 1024)\n",
        timeout_s=20,
    )
    assert res.error_type == "OSError" and "No space left" in (res.error_message or "")


def test_no_host_environment_variable_is_visible(
    docker_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVOAGENT_TEST_SECRET", "s3cret-value")
    env = answer_of(docker_sandbox, "import os\nanswer = dict(os.environ)\n")
    assert set(env) <= ALLOWED_ENV, set(env) - ALLOWED_ENV
    assert "s3cret-value" not in str(env)


def test_not_root_no_capabilities_no_new_privs(docker_sandbox: Any) -> None:
    a = answer_of(
        docker_sandbox,
        "import os\n"
        "st = dict(r.split(':', 1) for r in open('/proc/self/status').read().splitlines() if ':' in r)\n"
        "answer = {'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(),\n"
        "          'caps': [st[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')],\n"
        "          'nnp': st['NoNewPrivs'].strip()}\n",
    )
    assert a["uid"] != 0 and a["euid"] != 0 and a["gid"] != 0
    assert all(int(c, 16) == 0 for c in a["caps"]), a["caps"]
    assert a["nnp"] == "1"


def test_container_is_configured_locked_down(docker_sandbox: Any) -> None:
    """The same settings, read back from the engine for one pooled container."""
    container = docker_sandbox.pool.take()
    try:
        info = docker_sandbox.api.inspect_container(container)
    finally:
        docker_sandbox.pool.discard(container)
    hc, cfg = info["HostConfig"], info["Config"]
    assert hc["NetworkMode"] == "none" and hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"] and hc["Privileged"] is False
    # Only the supervisor holds these; the code and the tools run with none (test above).
    assert sorted(hc["CapAdd"]) == [
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
    ] or sorted(hc["CapAdd"]) == ["KILL", "SETGID", "SETPCAP", "SETUID"]
    assert any(s.startswith("no-new-privileges") for s in hc["SecurityOpt"])
    assert hc["Memory"] == hc["MemorySwap"] == docker_sandbox.config.memory_mb * 1024 * 1024
    assert hc["PidsLimit"] == docker_sandbox.config.pids_limit
    assert hc["NanoCpus"] == int(docker_sandbox.config.cpus * 1e9)
    assert hc["Init"] is True
    assert not hc.get("Binds") and not info.get("Mounts")
    assert list(hc["Tmpfs"]) == ["/work"]
    # The container's main process is the supervisor (root with four capabilities); the
    # code runs as uid 1000 and each tool under a uid of its own (tests above).
    assert cfg["User"] == "0:0"
    assert "docker.sock" not in str(info)


FORGER = r"""
import os
forged = b'EVOAGENT-RESULT ' + b'0' * 32 + b' {"answer": "forged", "tool_calls": []}\n'
opened = []
# Every descriptor of every process this uid can see, the supervisor's stdout first.
paths = ["/proc/%d/fd/1" % os.getppid(), "/proc/1/fd/1"]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            paths += ["/proc/%s/fd/%s" % (pid, fd) for fd in os.listdir("/proc/%s/fd" % pid)]
        except OSError:
            pass
for path in paths:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        continue
    opened.append(path)
    try:
        os.write(fd, forged)
    finally:
        os.close(fd)
print(forged.decode(), end="")  # and on its own stdout
answer = {"value": "real", "me": os.getpid(), "opened": opened}
"""


def test_code_cannot_forge_its_result_through_proc_or_its_stdout(docker_sandbox: Any) -> None:
    """The attack of issue 9: write a result line on the supervisor's stdout through
    /proc/<ppid>/fd/1 (or any descriptor in reach). The supervisor runs as root, the code
    as another user: its descriptors are out of reach, and a line without this job's
    secret on the code's own stdout is only output."""
    res = docker_sandbox.run(FORGER, timeout_s=20)
    assert res.ok, res.observation()
    assert res.answer["value"] == "real" and res.tool_calls == []
    # Only the code's own descriptors (its pipes, /dev/null) could be opened.
    mine = f"/proc/{res.answer['me']}/"
    assert all(path.startswith(mine) for path in res.answer["opened"]), res.answer["opened"]
    assert "EVOAGENT-RESULT" in res.stdout  # the forged line came back as mere output
