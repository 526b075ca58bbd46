"""The sandbox image: `evoagent-sandbox:<hash of the runner's files + package list>`.

Two layers, so that a change of the runner rebuilds in about a second:
- the base, `evoagent-sandbox-base:<hash of suite + packages>`: Debian bookworm with
  python3 and the declared packages and a non-root user (uid 1000). From a Dockerfile
  when `debian:bookworm-slim` is present or can be pulled; otherwise offline: a root
  filesystem made by `debootstrap`, cached as a tarball, loaded with `docker import`.
- the image: the base plus the runner, built from a tiny Dockerfile (no network, no RUN).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sandbox.base import ImageMissing, SandboxError
from sandbox.config import SandboxConfig
from sandbox.jobs import RUNNER_IN_IMAGE, runner_files

REPOSITORY = "evoagent-sandbox"
BASE_REPOSITORY = "evoagent-sandbox-base"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-numpy", "python3-sympy")
PULL_BASE = "debian:bookworm-slim"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SANDBOX_UID = 1000
#: tool n of a run runs as TOOL_UID_BASE + n: no two tools, and no tool and the code, share a user
TOOL_UID_BASE = 2000
#: bump when the recipe below changes in a way the hashes cannot see
RECIPE = "3"

BASE_DOCKERFILE = """\
FROM {pull_base}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages} \\
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \\
 && (getent group {uid} || groupadd --gid {uid} sandbox) \\
 && (getent passwd {uid} || useradd --uid {uid} --gid {uid} --home-dir /work \\
      --no-create-home --shell /usr/sbin/nologin sandbox)
"""

IMAGE_DOCKERFILE = """\
FROM {base}
COPY runner/ {runner_dir}/
ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1
WORKDIR /work
USER 0:0
LABEL org.evoagent.sandbox="1" org.evoagent.packages="{packages}"
CMD ["python3", "-I", "{runner}", "supervise"]
"""

Progress = Callable[[str], None]


def packages(config: SandboxConfig | None = None) -> list[str]:
    extra = config.extra_packages if config else []
    return sorted(set(BASE_PACKAGES) | set(extra))


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def _base_choice(config: SandboxConfig | None) -> tuple[str, ...]:
    # Only a non-default FROM image enters the hashes: the default keeps existing tags.
    base = config.base_image if config else PULL_BASE
    return () if base == PULL_BASE else (base,)


def base_tag(config: SandboxConfig | None = None) -> str:
    pkgs = " ".join(packages(config))
    return (
        f"{BASE_REPOSITORY}:{_digest(RECIPE, SUITE, pkgs, BASE_DOCKERFILE, *_base_choice(config))}"
    )


def image_tag(config: SandboxConfig | None = None) -> str:
    """The configured image, else `evoagent-sandbox:<hash of the runner + package list>`."""
    if config is not None and config.image:
        return config.image
    pkgs = " ".join(packages(config))
    runner = [part for name, data in runner_files().items() for part in (name, data)]
    digest = _digest(RECIPE, SUITE, pkgs, *runner, IMAGE_DOCKERFILE, *_base_choice(config))
    return f"{REPOSITORY}:{digest}"


def image_present(tag: str) -> bool:
    """Is `tag` in the local engine? (SandboxUnavailable if the engine is not reachable.)"""
    from sandbox.engine import connect

    client = connect()
    try:
        return _present(client, tag)
    finally:
        client.close()


def _present(client: Any, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.api.inspect_image(tag)
    except ImageNotFound:
        return False
    return True


def ensure_image(
    config: SandboxConfig | None = None, *, force: bool = False, progress: Progress | None = None
) -> str:
    """Build the image if it is missing (fast when present) and return its tag."""
    from sandbox.engine import connect

    config = config or SandboxConfig()
    say = progress or (lambda _msg: None)
    tag = image_tag(config)
    default_tag = image_tag(config.model_copy(update={"image": None}))
    client = connect(timeout=None)  # imports and builds take minutes; no client timeout
    try:
        if not force and _present(client, tag):
            return tag
        if tag != default_tag:
            raise ImageMissing(
                f"sandbox image {tag!r} (setting sandbox.image) is not present: build or load "
                "it, or unset sandbox.image to use the one `evoagent sandbox build` makes"
            )
        with _build_lock(cache_dir(config)):
            if not force and _present(client, tag):
                return tag  # another process built it while we waited
            started = time.monotonic()
            base = _ensure_base(client, config, say)
            say(f"building {tag} from {base}")
            _docker_build(client, _image_context(base, config), tag)
            say(f"built {tag} in {time.monotonic() - started:.1f} s")
        return tag
    finally:
        client.close()


# --------------------------------------------------------------------------- base


def _ensure_base(client: Any, config: SandboxConfig, say: Progress) -> str:
    tag = base_tag(config)
    if _present(client, tag):
        return tag
    if _pullable_base(client, config.base_image, say):
        say(f"building {tag} from {config.base_image} with apt-get")
        dockerfile = BASE_DOCKERFILE.format(
            pull_base=config.base_image, packages=" ".join(packages(config)), uid=SANDBOX_UID
        )
        _docker_build(client, _context({"Dockerfile": dockerfile.encode()}), tag)
        return tag
    tarball = _rootfs_tarball(config, say)
    say(f"importing {tarball} as {tag}")
    repository, _, version = tag.partition(":")
    client.api.import_image_from_file(
        str(tarball),
        repository=repository,
        tag=version,
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
        ],
    )
    if not _present(client, tag):
        raise SandboxError(
            f"`docker import` of {tarball} did not create {tag}: see `docker images`"
        )
    return tag


def _pullable_base(client: object, base: str, say: Progress) -> bool:
    """Is the Dockerfile route open? Present locally, or pulled within a short timeout."""
    import docker

    if _present(client, base):
        return True
    repository, _, version = (
        base.rpartition(":") if ":" in base.split("/")[-1] else (base, "", "latest")
    )
    # A short-timeout client: with no registry, a pull must fail fast, never hang the build.
    puller = docker.from_env(timeout=20)
    try:
        puller.api.pull(repository, tag=version)
        return _present(client, base)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        say(f"{base} cannot be pulled ({first}); building offline with debootstrap")
        return False
    finally:
        puller.close()


def cache_dir(config: SandboxConfig | None = None) -> Path:
    if config is not None and config.build_cache_dir:
        path = Path(config.build_cache_dir).expanduser()
    elif os.geteuid() == 0:
        path = Path("/var/cache/evoagent")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "evoagent"
    path.mkdir(parents=True, exist_ok=True)
    return path


def debian_mirror(config: SandboxConfig | None = None) -> str:
    """The configured mirror, else the host's own Debian apt source, else deb.debian.org."""
    if config is not None and config.debian_mirror:
        return config.debian_mirror
    files = [Path("/etc/apt/sources.list")]
    sources_d = Path("/etc/apt/sources.list.d")
    if sources_d.is_dir():
        files += sorted(sources_d.iterdir())
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            candidates = words[1:] if words[:1] in (["URIs:"], ["deb"]) else []
            for word in candidates:
                if word.startswith("[") or not word.startswith(("http://", "https://")):
                    continue
                if word.rstrip("/").endswith("/debian"):
                    return word.rstrip("/")
    return DEFAULT_MIRROR


def _rootfs_tarball(config: SandboxConfig, say: Progress) -> Path:
    """The cached debootstrap root filesystem (made once: about a minute)."""
    cache = cache_dir(config)
    # Keyed by what debootstrap makes (suite + packages) only.
    key = _digest(RECIPE, SUITE, " ".join(packages(config)))
    tarball = cache / f"rootfs-{SUITE}-{key}.tar"
    if tarball.is_file():
        say(f"using cached root filesystem {tarball}")
        return tarball
    if os.geteuid() != 0:
        raise SandboxError(
            f"building the sandbox image offline needs root (debootstrap) and {PULL_BASE} "
            "cannot be pulled: run `sudo evoagent sandbox build` once, or make the base "
            "image available to Docker"
        )
    if shutil.which("debootstrap") is None or shutil.which("tar") is None:
        raise SandboxError(
            f"{PULL_BASE} cannot be pulled and debootstrap is not installed: "
            "`apt-get install debootstrap` (or run `bash scripts/docker-bootstrap.sh`)"
        )
    mirror = debian_mirror(config)
    rootfs = cache / f"rootfs-{key}.tmp-{os.getpid()}"
    log_path = cache / "debootstrap.log"
    shutil.rmtree(rootfs, ignore_errors=True)
    say(f"debootstrap {SUITE} from {mirror} into {rootfs} (log: {log_path})")
    cmd = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(packages(config)),
        SUITE,
        str(rootfs),
        mirror,
    ]
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-5:]
            raise SandboxError(
                f"debootstrap failed (exit {proc.returncode}); last lines of {log_path}: "
                + " | ".join(tail)
                + f" — check that {mirror} is reachable, or set sandbox.debian_mirror"
            )
        _trim_and_add_user(rootfs)
        partial = tarball.with_suffix(".tar.partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True
        )
        partial.rename(tarball)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def _trim_and_add_user(rootfs: Path) -> None:
    # Package caches and docs are a third of the tree and nothing in the sandbox reads them.
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
    uid = SANDBOX_UID
    with open(rootfs / "etc/passwd", "a", encoding="utf-8") as fh:
        fh.write(f"sandbox:x:{uid}:{uid}:evoagent sandbox:/work:/usr/sbin/nologin\n")
    with open(rootfs / "etc/group", "a", encoding="utf-8") as fh:
        fh.write(f"sandbox:x:{uid}:\n")
    (rootfs / "work").mkdir(exist_ok=True)


# --------------------------------------------------------------------------- build


def _image_context(base: str, config: SandboxConfig) -> io.BytesIO:
    dockerfile = IMAGE_DOCKERFILE.format(
        base=base,
        runner=RUNNER_IN_IMAGE,
        runner_dir=str(Path(RUNNER_IN_IMAGE).parent),
        uid=SANDBOX_UID,
        packages=" ".join(packages(config)),
    )
    files = {f"runner/{name}": data for name, data in runner_files().items()}
    return _context({"Dockerfile": dockerfile.encode(), **files})


def _context(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _docker_build(client: Any, context: io.BytesIO, tag: str) -> None:
    log: list[str] = []
    for chunk in client.api.build(
        fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, decode=True
    ):
        if "error" in chunk:
            detail = chunk.get("error") or ""
            raise SandboxError(
                f"docker build of {tag} failed: {detail.strip()} (last output: "
                + " ".join(log[-3:])
                + ")"
            )
        if chunk.get("stream", "").strip():
            log.append(chunk["stream"].strip())


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """One build at a time on this machine (CI may start several test processes)."""
    with open(directory / "build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
