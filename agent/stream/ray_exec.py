"""`evoagent run --ray`: a stream's tasks solved on a Ray cluster, the library kept by the driver.

    driver (this process)                      Ray worker actors (one per --workers)
    --------------------                       -------------------------------------
    batch start: library.snapshot(),           each loads its model (a `local:` model once
      pickled and put in the object store      per actor), its own sandbox and embedder
    per task: pick an idle actor, call    -->  solve(task) against the snapshot
      solve(snapshot ref, task, episode id)    (SnapshotLibrary: ranks like Library, keeps
    record the episode it returns, then   <--  the episode in an outbox); returns the
      the result line (runner), as threads      result, the outbox and its node id
    batch end: forge, consolidate (driver)

Batch semantics are the threads executor's: the snapshot is the library at the batch
start, nothing is admitted mid-batch, and the forge runs on the driver over the batch's
traces in stream order; so results do not depend on the executor or the worker count.

Recorded once: the driver picks each episode's id from (run, task, attempt). A task whose
episode is stored but whose result line is not (the driver killed in between) is not run
again: its result is read back from the episode. A worker node that dies mid-task gets the
task re-run once on a restarted actor (Ray's retry); only the answer that returns is
recorded.

No worker opens the library: it gets a snapshot, and returns what it would have written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import queue
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agent.stream.errors import StreamError

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.deps import AgentDeps
    from agent.task import Task
    from agent.types import ForgeMode
    from memory.episode import Episode
    from memory.protocol import ToolLibrary
    from memory.snapshot import SnapshotLibrary

log = logging.getLogger(__name__)

INSTALL = "--ray needs Ray, an optional extra: pip install 'evoagent[ray]' -c constraints.txt"
#: how a node that dies mid-task is survived: its actor restarts elsewhere and re-runs the task
MAX_RESTARTS = 1
MAX_TASK_RETRIES = 1
#: seconds to wait for a restarted actor before starting a new one
RECOVER_S = 120
#: where `ray start --head` records the address of the cluster it started on this machine
CURRENT_CLUSTER = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
#: the node address of a private `--ray local` cluster
LOCAL_NODE_IP = "127.0.0.2"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise StreamError(INSTALL) from None
    return ray


def episode_id(run_id: str, task_id: str, attempt: int) -> str:
    """The id of a task's episode in a Ray run: the same on a re-run after a kill."""
    digest = hashlib.sha256(f"{run_id}\0{task_id}\0{attempt}".encode()).hexdigest()
    return f"ep-{digest[:16]}"


def cluster_address(address: str) -> str | None:
    """The HOST:PORT `address` names (`auto`: $RAY_ADDRESS, else the cluster `ray start`
    recorded on this machine); None for `local` and for client (`ray://`) addresses."""
    if address == "local" or "://" in address:
        return None
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            try:
                address = CURRENT_CLUSTER.read_text().strip()
            except OSError:
                address = ""
        if not address:
            raise StreamError(
                "no Ray cluster is running on this machine: start one with `ray start --head`, "
                "give its address (--ray HOST:PORT), or use --ray local for a private one"
            )
    return address


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at the cluster's address: Ray itself waits minutes."""
    target = cluster_address(address)
    if target is None:
        return
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise StreamError(f"--ray wants auto, local or HOST:PORT, not {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise StreamError(
            f"no Ray cluster answers at {target} ({exc.strerror or exc}): start one with "
            "`ray start --head`, check the address, or use --ray local for a private one"
        ) from None


def connect(address: str, workers: int) -> bool:
    """Join the cluster at `address`; True when this call started Ray (and must stop it).

    `auto` joins a cluster already running on this machine (`ray start --head`); `local`
    starts a private one for this run only; anything else is a cluster address. Nothing
    starts a cluster silently: `auto` with none running is an error."""
    ray = import_ray()
    if ray.is_initialized():
        return False  # a caller (a test, a notebook) connected already
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        # A private cluster stays on this machine: a loopback node address (Ray replaces
        # 127.0.0.1 itself by the machine's network address, so another one of 127/8).
        ray.init(
            address="local",  # never a cluster `ray start` left running here
            num_cpus=max(workers, os.cpu_count() or 1),
            _node_ip_address=LOCAL_NODE_IP,
            include_dashboard=False,
            **quiet,
        )
        return True
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise StreamError(
            f"no Ray cluster at {address!r} ({str(exc).splitlines()[0]}): start one with "
            "`ray start --head`, give its address, or use --ray local for a private one"
        ) from None
    return True


class TaskWorker:
    """A Ray actor: one model, sandbox and embedder, loaded once; solves one task at a time."""

    def __init__(self, settings: Settings) -> None:
        from agent.deps import open_model
        from memory import get_embedder
        from sandbox import get_sandbox

        self.model, self.settings = open_model(settings)
        self.embedder = get_embedder(self.settings.memory)
        self.sandbox = get_sandbox(self.settings.sandbox)
        #: the deps of the batch in hand (its snapshot), and the batch's key
        self.deps: AgentDeps | None = None
        self.library: SnapshotLibrary | None = None
        self.key: str | None = None

    def ready(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def solve(
        self, box: list[Any], key: str, task: dict[str, Any], forge: str, run_id: str, ep: str
    ) -> dict[str, Any]:
        import ray

        from agent.deps import AgentDeps
        from agent.solve import solve_task
        from agent.task import Task
        from memory.snapshot import SnapshotLibrary

        if key != self.key or self.deps is None or self.library is None:
            # A new batch: its snapshot, fetched and unpickled once.
            snap = pickle.loads(ray.get(box[0]))
            self.library = SnapshotLibrary(snap, self.embedder)
            self.deps = AgentDeps(
                model=self.model,
                library=self.library,
                sandbox=self.sandbox,
                settings=self.settings,
            )
            self.key = key
        library = self.library
        library.take_outbox()  # nothing from an earlier task (or a retried one) leaks in
        result = solve_task(
            Task.from_dict(task),
            self.deps,
            forge=cast("ForgeMode", forge),
            run_id=run_id,
            episode_id=ep,
        )
        return {
            "result": result,
            "outbox": library.take_outbox(),
            "node": str(ray.get_runtime_context().get_node_id()),
        }


class RayExecutor:
    """Runs the runner's tasks on Ray actors; see the module docstring."""

    def __init__(self, settings: Settings, workers: int, address: str) -> None:
        if settings.mcp:
            raise StreamError("--mcp cannot be combined with --ray yet: run the stream without one")
        self.ray = import_ray()
        self.settings = settings
        self.owns_ray = connect(address, workers)
        self._actor = self.ray.remote(TaskWorker).options(
            num_cpus=1,
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_TASK_RETRIES,
            scheduling_strategy="SPREAD",
        )
        self._idle: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        #: the nodes that solved at least one of this run's tasks
        self.nodes: set[str] = set()
        self.snapshot: dict[str, Any] = {}
        self._box: list[Any] = []
        self._key = ""
        try:
            actors = [self._actor.remote(settings) for _ in range(workers)]
            self._ready(actors)
        except BaseException:
            self.close()
            raise
        for actor in actors:
            self._idle.put(actor)

    def _ready(self, actors: list[Any]) -> None:
        try:
            self.ray.get([a.ready.remote() for a in actors])
        except self.ray.exceptions.RayError as exc:
            raise StreamError(f"a Ray worker could not start: {_cause(exc)}") from None

    def begin_batch(self, library: ToolLibrary) -> None:
        """Snapshot the library and put it in the object store (its size and cost in
        `self.snapshot`, for the batch's record)."""
        started = time.perf_counter()
        snap = library.snapshot()
        taken = time.perf_counter()
        blob = pickle.dumps(snap, protocol=5)
        ref = self.ray.put(blob)
        # A list, so the actor gets the reference and fetches the blob once per batch.
        self._box, self._key = [ref], uuid.uuid4().hex
        self.snapshot = {
            "tools": snap.n_tools,
            "bytes": len(blob),
            "seconds_take": round(taken - started, 4),
            "seconds": round(time.perf_counter() - started, 4),
        }

    def solve(
        self, task: Task, deps: AgentDeps, *, forge: str, run_id: str, attempt: int
    ) -> Episode:
        ep = episode_id(run_id, task.id, attempt)
        stored = deps.library.get_episode(ep)
        if stored is not None:
            # Recorded before the driver was killed, its result line not: done already.
            return stored
        out = self._run(task, forge, run_id, ep)
        # Not stored (checked above), and this driver is the library's only writer.
        for record, learned in out["outbox"].episodes:
            deps.library.record_episode(record, learned)
        for events, solved in out["outbox"].usage:
            deps.library.record_usage(events, solved=solved)
        with self._lock:
            self.nodes.add(out["node"])
        return cast("Episode", out["result"])

    def _run(self, task: Task, forge: str, run_id: str, ep: str) -> dict[str, Any]:
        """Solve on an idle actor. Ray re-runs a task whose actor died (restarted on a
        live node); a call that finds its actor unreachable (its node just died, not yet
        declared dead) is run once more here, on the actor once it is back or a new one.
        Only the answer that returns is recorded, so a task is never recorded twice."""
        exceptions = self.ray.exceptions
        actor = self._idle.get()
        try:
            for tries_left in (1, 0):
                try:
                    ref = actor.solve.remote(
                        self._box, self._key, task.to_dict(), forge, run_id, ep
                    )
                    return cast("dict[str, Any]", self.ray.get(ref))
                except exceptions.RayActorError as exc:
                    log.warning("task %s: its Ray worker failed (%s)", task.id, _cause(exc))
                    actor = self._recover(actor)
                    if not tries_left:
                        raise StreamError(f"the Ray worker died twice: {_cause(exc)}") from None
                except exceptions.RayTaskError as exc:
                    raise StreamError(f"the task failed on its Ray worker: {_cause(exc)}") from None
            raise AssertionError("unreachable")
        finally:
            self._idle.put(actor)

    def _recover(self, actor: Any) -> Any:
        """The actor once restarted, or a new one in its place if it is gone for good."""
        try:
            self.ray.get(actor.ready.remote(), timeout=RECOVER_S)
            return actor
        except self.ray.exceptions.RayError:
            return self._actor.remote(self.settings)

    def close(self) -> None:
        while not self._idle.empty():
            try:
                self.ray.kill(self._idle.get_nowait())
            except Exception:  # an actor already gone
                log.debug("could not kill a Ray actor", exc_info=True)
        if self.owns_ray:
            self.ray.shutdown()


def _cause(exc: BaseException) -> str:
    text = str(getattr(exc, "cause", None) or exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
