"""What confines the runner's processes beyond their uid: a seccomp filter that allows
no socket but AF_UNIX (installed in the supervisor, inherited by everything it starts),
and, in each tool's process, a Landlock ruleset that lets it read the system's files
and nothing else: not /proc of another process (a tool must not tell a test harness
from real use by reading its caller's state), not the code's /work, nothing writable.

Both are built with ctypes from the kernel's documented structures; where the kernel or
the container's seccomp profile does not offer them they are skipped, and `status()`
says so (`evoagent sandbox check` reports it).
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EAFNOSUPPORT = 97
EPERM = 1
#: (AUDIT_ARCH, socket, socketpair) per machine
_ARCH = {
    "x86_64": (0xC000003E, 41, 53),
    "aarch64": (0xC00000B7, 198, 199),
}
AF_UNIX = 1

# Landlock (include/uapi/linux/landlock.h)
_SYS_LANDLOCK = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
#: rights the kernel knows per ABI version: v1 13 rights, v2 REFER, v3 TRUNCATE, v5 IOCTL_DEV
_FS_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
#: what a tool may read: the interpreter, its libraries and their data, the runner
TOOL_READABLE = (
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/etc",
    "/opt",
    "/proc/self",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
)
_libc: Any = None
_state: dict[str, str] = {}


def libc() -> Any:
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
    return _libc or None


def libc_prctl() -> Any:
    lib = libc()
    return getattr(lib, "prctl", None) if lib is not None else None


def _filter(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def socket_filter() -> bytes | None:
    """The BPF program: socket() and socketpair() with another family than AF_UNIX fail
    with EAFNOSUPPORT; a foreign ABI (32-bit, x32) gets EPERM; everything else is allowed
    (the container's own seccomp profile still applies under it)."""
    arch = _ARCH.get(platform.machine())
    if arch is None:
        return None
    audit, sys_socket, sys_socketpair = arch
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    deny_family = SECCOMP_RET_ERRNO | EAFNOSUPPORT
    deny_abi = SECCOMP_RET_ERRNO | EPERM
    prog = [
        _filter(ld_w_abs, 0, 0, 4),  # 0: A = arch
        _filter(jeq_k, 1, 0, audit),  # 1: native? skip 1
        _filter(ret_k, 0, 0, deny_abi),  # 2: foreign ABI
        _filter(ld_w_abs, 0, 0, 0),  # 3: A = syscall number
        _filter(jge_k, 0, 1, 0x40000000),  # 4: x32 numbers? (else skip 1)
        _filter(ret_k, 0, 0, deny_abi),  # 5
        _filter(jeq_k, 2, 0, sys_socket),  # 6: socket -> 9
        _filter(jeq_k, 1, 0, sys_socketpair),  # 7: socketpair -> 9
        _filter(ret_k, 0, 0, SECCOMP_RET_ALLOW),  # 8
        _filter(ld_w_abs, 0, 0, 16),  # 9: A = args[0] (low word): the family
        _filter(jeq_k, 0, 1, AF_UNIX),  # 10
        _filter(ret_k, 0, 0, SECCOMP_RET_ALLOW),  # 11
        _filter(ret_k, 0, 0, deny_family),  # 12
    ]
    return b"".join(prog)


def install_socket_filter() -> str:
    """Install the socket filter on this process (inherited by every child). Returns what
    happened: `on`, or why it is off."""
    prog = socket_filter()
    prctl = libc_prctl()
    if prog is None or prctl is None:
        _state["seccomp"] = "off: not supported on this machine"
        return _state["seccomp"]
    n = len(prog) // 8
    buf = ctypes.create_string_buffer(prog, len(prog))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(n, ctypes.cast(buf, ctypes.c_void_p))
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _state["seccomp"] = f"off: no_new_privs refused (errno {ctypes.get_errno()})"
        return _state["seccomp"]
    # The pointer as an unsigned long: a bare int would be passed as a 32-bit C int.
    address = ctypes.c_ulong(ctypes.addressof(fprog))
    if (
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, address, ctypes.c_ulong(0), ctypes.c_ulong(0))
        != 0
    ):
        _state["seccomp"] = f"off: the filter was refused (errno {ctypes.get_errno()})"
        return _state["seccomp"]
    _state["seccomp"] = "on"
    return "on"


def _syscall(nr: int, *args: Any) -> int:
    lib = libc()
    if lib is None:
        return -1
    return int(lib.syscall(ctypes.c_long(nr), *args))


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none, or the syscall is filtered out)."""
    nrs = _SYS_LANDLOCK.get(platform.machine())
    if nrs is None:
        return 0
    version = _syscall(
        nrs[0], None, ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION)
    )
    return max(0, version)


def restrict_reads(readable: tuple[str, ...] = TOOL_READABLE) -> str:
    """Landlock this process: read-only access to `readable` (and beneath) and to the
    interpreter's own installation (outside /usr when the runner runs on a host: a venv,
    pyenv), nothing else of the file system. Returns `on`, or why it is off."""
    import sys

    readable = (*readable, *{sys.prefix, sys.base_prefix, sys.exec_prefix})
    abi = landlock_abi()
    if abi <= 0:
        return "off: Landlock is not available (kernel or seccomp profile)"
    nrs = _SYS_LANDLOCK[platform.machine()]
    handled = _FS_RIGHTS[max(v for v in _FS_RIGHTS if v <= abi)]
    attr = struct.pack("Q", handled)
    ruleset = _syscall(
        nrs[0], ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        return f"off: the ruleset was refused (errno {ctypes.get_errno()})"
    try:
        read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
        for path in readable:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rights = read if os.path.isdir(path) else (FS_EXECUTE | FS_READ_FILE)
                rule = struct.pack("=Qi", rights & handled, fd)
                if (
                    _syscall(
                        nrs[1],
                        ctypes.c_int(ruleset),
                        ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                        ctypes.c_char_p(rule),
                        ctypes.c_uint32(0),
                    )
                    < 0
                ):
                    return f"off: a rule for {path} was refused (errno {ctypes.get_errno()})"
            finally:
                os.close(fd)
        prctl = libc_prctl()
        if prctl is None or prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return "off: no_new_privs refused"
        if _syscall(nrs[2], ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            return f"off: restricting failed (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    return "on"


def status() -> dict[str, str]:
    """What this process installed (for the supervisor's result notes)."""
    return dict(_state)
