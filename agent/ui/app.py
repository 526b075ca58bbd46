"""The web app of `evoagent ui`: routes, and what each page reads from the home.

- `/tools` (filter, sort, search by meaning, pages of 100), `/tools/{name}` (source and
  tests highlighted, versions, evidence, usage per day, calls and callers,
  near-duplicates), `/tools/{name}/diff`, and the curation previews and confirmations
  (agent/ui/curation.py): `/tools/{name}/do/{action}`, `/tools/{name}/verdict`, `/prune`.
- `/runs`, `/runs/{id}` (the report's renderer, agent/stream/report.py, and a live
  block fed by `/runs/{id}/live.json` while the run's process is alive), `/tips`,
  `/failures`.

One library, opened as a guest (a stream on the same home keeps its index; SQLite in
WAL lets it write while pages read), used by one request at a time. Writes carry the
app's CSRF token; an address other than loopback needs the access token (`?token=` once,
then a cookie). Tool source is text: escaped by Jinja2 or highlighted by Pygments (which
escapes), never run.
"""

from __future__ import annotations

import contextlib
import difflib
import hmac
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agent.ui import curation
from memory.errors import LibraryError, UnknownToolError

if TYPE_CHECKING:
    from agent.config import Settings
    from memory import Library

HERE = Path(__file__).parent
PAGE = 100
SORTS = {
    "uses": lambda t: (-t.total_uses, t.name),
    "success": lambda t: (-t.reliability, t.name),
    "trust": lambda t: (
        {"pinned": 0, "trusted": 1, "probation": 2, "doubted": 3}.get(t.trust, 4),
        -t.n_support,
        t.name,
    ),
    "recent": lambda t: (-(t.last_used_at or t.created_at), t.name),
    "name": lambda t: t.name,
}
STATUSES = ("active", "quarantined", "archived", "all")
T = TypeVar("T")


class Home:
    """The home's library, opened on first use and shared by the requests, one at a time
    (a SQLAlchemy session per call inside; the lock keeps the embedder and caches simple)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lib: Library | None = None
        self._lock = threading.Lock()
        self._tools_cache: tuple[Any, list[Any]] | None = None
        self._prune_cache: tuple[Any, tuple[list[Any], curation.Preview]] | None = None

    def library(self) -> Library:
        if self._lib is None:
            from memory import Library

            self._lib = Library.open(self.settings.home, self.settings.memory, own_index=False)
        return self._lib

    def tools(self, status: str) -> list[Any]:
        """Every tool of a status, cached until a tool changes or a use is recorded."""
        lib = self.library()
        key = (status, lib.tools_stamp(), lib.usage_stamp())
        if self._tools_cache is None or self._tools_cache[0] != key:
            self._tools_cache = (key, lib.list_tools(status))
        return self._tools_cache[1]

    def prune_preview(self) -> tuple[list[Any], curation.Preview]:
        """What pruning would change, cached until a tool, a use or an episode changes
        (its rules read nothing else): the dry run reads every tool."""
        lib = self.library()
        key = (lib.tools_stamp(), lib.usage_stamp(), lib.episodes_stamp())
        if self._prune_cache is None or self._prune_cache[0] != key:
            self._prune_cache = (key, curation.preview_prune(lib))
        return self._prune_cache[1]

    async def run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await run_in_threadpool(locked)

    def close(self) -> None:
        if self._lib is not None:
            self._lib.close()


class Pages:
    """The app's pages over one home (see the module docstring): each handler reads what
    it shows through `Home`, one request at a time; writes go through `curation`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = Home(settings)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.csrf = secrets.token_urlsafe(24)
        self._reports: dict[str, tuple[tuple[float, int], str]] = {}
        self.templates.env.globals.update(csrf=self.csrf, when=_when, home_dir=str(settings.home))
        self.templates.env.filters["python"] = _highlight

    def page(self, request: Request, template: str, code: int = 200, /, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, template, context, status_code=code)

    async def refuse_stale_csrf(self, request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not hmac.compare_digest(form.get("csrf", ""), self.csrf):
            raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
        return form

    # ------------------------------------------------------------------ library

    async def tools_page(self, request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        status = request.query_params.get("status", "active")
        sort = request.query_params.get("sort", "uses")
        if status not in STATUSES or sort not in SORTS:
            raise HTTPException(400, f"status is one of {STATUSES}; sort one of {tuple(SORTS)}")
        number = max(1, _int(request.query_params.get("page"), 1))

        def read() -> tuple[list[Any], dict[str, float], int]:
            lib = self.home.library()
            if q:
                hits = lib.search_tools(q, k=50)
                tools = [h.tool for h in hits if status in ("all", h.tool.status)]
                return tools, {h.tool.name: h.score for h in hits}, len(tools)
            tools = sorted(self.home.tools(status), key=SORTS[sort])
            start = (number - 1) * PAGE
            return tools[start : start + PAGE], {}, len(tools)

        tools, scores, total = await self.home.run(read)
        pages = max(1, -(-total // PAGE))
        return self.page(
            request, "tools.html", tools=tools, scores=scores, q=q, status=status, sort=sort,
            total=total, number=number, pages=pages, statuses=STATUSES, sorts=list(SORTS),
        )  # fmt: skip

    async def tool_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        version = _int(request.query_params.get("v"), None)

        def read() -> dict[str, Any]:
            lib = self.home.library()
            lib.require_tool(name)
            tool = lib.get_tool(name, version)
            if tool is None:
                versions = [v.version for v in lib.tool_versions(name)]
                raise LibraryError(f"tool {name!r} has no version {version}: it has {versions}")
            near = [
                h
                for h in lib.search_tools(tool.docstring or tool.name, k=4, views=("description",))
                if h.tool.name != name
            ][:3]
            return {
                "tool": tool,
                "current": lib.get_tool(name),
                "versions": lib.tool_versions(name),
                "history": lib.tool_history(name),
                "evidence": lib.tool_evidence(name, limit=200),
                "tasks": lib.tool_tasks(name)[:50],
                "usage": lib.usage(name, limit=30),
                "days": lib.usage_by_day(name),
                "callees": lib.callees(name),
                "callers": lib.callers(name),
                "near": near,
            }

        data = await self.home.run(read)
        return self.page(request, "tool.html", chart=_usage_svg(data["days"]), **data)

    async def diff_page(self, request: Request) -> Response:
        name = request.path_params["name"]

        def read() -> dict[str, Any]:
            lib = self.home.library()
            lib.require_tool(name)
            versions = lib.tool_versions(name)
            nums = [v.version for v in versions]
            a = _int(request.query_params.get("a"), nums[-2] if len(nums) > 1 else nums[-1])
            b = _int(request.query_params.get("b"), nums[-1])
            old, new = lib.get_tool(name, a), lib.get_tool(name, b)
            if old is None or new is None:
                raise LibraryError(f"tool {name!r} has versions {nums}, not {a} and {b}")
            lines: list[str] = []
            for part, x, y in (("source", old.source, new.source), ("tests", old.tests, new.tests)):
                lines += difflib.unified_diff(
                    x.splitlines(), y.splitlines(), f"{part} v{a}", f"{part} v{b}", lineterm=""
                )
            return {"name": name, "a": a, "b": b, "nums": nums, "lines": lines}

        return self.page(request, "diff.html", **(await self.home.run(read)))

    # ------------------------------------------------------------------ curation

    async def tool_action(self, request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        if request.method == "GET":

            def preview() -> curation.Preview:
                lib = self.home.library()
                lib.require_tool(name)
                return curation.preview_tool_action(lib.get_tool(name), action)  # type: ignore[arg-type]

            shown = await self.home.run(preview)
            target = f"/tools/{name}/do/{action}"
            return self.page(
                request, "confirm.html", preview=shown, target=target, back=f"/tools/{name}"
            )
        form = await self.refuse_stale_csrf(request)
        stamp = form.get("stamp", "")
        await self.home.run(
            lambda: curation.apply_tool_action(self.home.library(), name, action, stamp)
        )
        return RedirectResponse(f"/tools/{name}?done={action}", status_code=303)

    async def rollback(self, request: Request) -> Response:
        name = request.path_params["name"]
        version = _int(request.query_params.get("v"), None)
        if request.method == "GET":

            def preview() -> curation.Preview:
                lib = self.home.library()
                lib.require_tool(name)
                old = lib.get_tool(name, version) if version is not None else None
                if old is None:
                    raise LibraryError(f"{name} has no version {version}: see its page")
                current = lib.get_tool(name)
                assert current is not None  # required above
                return curation.preview_rollback(current, old, lib.callers(name))

            shown = await self.home.run(preview)
            return self.page(
                request, "confirm.html", preview=shown, target=f"/tools/{name}/rollback",
                back=f"/tools/{name}", extra={"v": str(version)},
            )  # fmt: skip
        form = await self.refuse_stale_csrf(request)
        back = _int(form.get("v"), None)

        def roll_back() -> None:
            lib = self.home.library()
            curation.apply_rollback(lib, name, back, form.get("stamp", ""))
            curation.recheck_after_rollback(lib, name, self.settings)

        await self.home.run(roll_back)
        return RedirectResponse(f"/tools/{name}?done=rollback", status_code=303)

    async def verdict(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            task_id = request.query_params.get("task_id", "")
            right = request.query_params.get("right") == "1"

            def preview() -> curation.Preview:
                lib = self.home.library()
                lib.require_tool(name)
                return curation.preview_verdict(lib.get_tool(name), task_id, right)  # type: ignore[arg-type]

            shown = await self.home.run(preview)
            extra = {"task_id": task_id, "right": "1" if right else "0"}
            return self.page(
                request, "confirm.html", preview=shown, target=f"/tools/{name}/verdict",
                back=f"/tools/{name}", extra=extra,
            )  # fmt: skip
        form = await self.refuse_stale_csrf(request)
        await self.home.run(
            lambda: curation.apply_verdict(
                self.home.library(), name, form.get("task_id", ""), form.get("right") == "1",
                form.get("stamp", ""),
            )
        )  # fmt: skip
        return RedirectResponse(f"/tools/{name}?done=verdict", status_code=303)

    async def prune(self, request: Request) -> Response:
        if request.method == "GET":
            changes, shown = await self.home.run(self.home.prune_preview)
            return self.page(
                request, "confirm.html", preview=shown, target="/prune", back="/tools",
                allowed=bool(changes),
            )  # fmt: skip
        form = await self.refuse_stale_csrf(request)
        done = await self.home.run(
            lambda: curation.apply_prune(self.home.library(), form.get("stamp", ""))
        )
        return self.page(request, "done.html", title=f"pruned: {len(done)} change(s)", changes=done)

    # ------------------------------------------------------------------ runs, notes

    async def runs_page(self, request: Request) -> Response:
        from agent.stream.store import list_runs

        runs = await run_in_threadpool(list_runs, self.settings.home)
        return self.page(request, "runs.html", runs=list(reversed(runs)))

    async def run_page(self, request: Request) -> Response:
        store = _run_store(self.settings.home, request.path_params["run_id"])
        body = await run_in_threadpool(_report_body, store, self._reports)
        return self.page(request, "run.html", run_id=store.run_id, body=Markup(body))

    async def run_live(self, request: Request) -> Response:
        store = _run_store(self.settings.home, request.path_params["run_id"])
        return JSONResponse(await run_in_threadpool(_live, store))

    async def notes_page(self, request: Request) -> Response:
        kind = request.url.path.strip("/")
        q = request.query_params.get("q", "").strip()

        def read() -> list[Any]:
            lib = self.home.library()
            if kind == "tips":
                return [h.tip for h in lib.search_tips(q, k=50)] if q else lib.list_tips()
            if q:
                return [h.failure for h in lib.search_failures(q, k=50)]
            return lib.list_failures()

        notes = await self.home.run(read)
        return self.page(request, "notes.html", kind=kind, notes=notes[:500], q=q, total=len(notes))

    # ------------------------------------------------------------------ errors

    async def not_found(self, request: Request, exc: Exception) -> Response:
        from agent.stream.store import list_runs

        def exists() -> tuple[list[str], list[str]]:
            try:
                names = self.home.library().tool_names()
            except Exception:  # the 404 page must render even if the library cannot open
                names = []
            return names, [r.run_id for r in list_runs(self.settings.home)]

        names, runs = await self.home.run(exists)
        return self.page(
            request, "missing.html", 404, message=str(exc), tools=names[:200], runs=runs
        )

    async def bad_request(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, curation.StaleForm):
            return self.page(request, "error.html", 409, title="Not applied", message=str(exc))
        if isinstance(exc, UnknownToolError):
            return await self.not_found(request, exc)
        if isinstance(exc, HTTPException):
            if exc.status_code == 404:
                return await self.not_found(request, exc)
            return self.page(
                request, "error.html", exc.status_code, title="Refused", message=exc.detail
            )
        return self.page(request, "error.html", 400, title="Refused", message=str(exc))


def create_app(
    settings: Settings, *, token: str | None = None, hosts: list[str] | None = None
) -> Starlette:
    """The app over `settings.home`. `token`: required of every request (a non-loopback
    address); `hosts`: the only Host headers answered (what the server is reached as: a
    page of another site whose name resolves to 127.0.0.1 is refused, so it cannot read
    the forms' CSRF token); the CSRF token of write forms is made per app."""
    pages = Pages(settings)
    routes = [
        Route("/", lambda r: RedirectResponse("/tools")),
        Route("/tools", pages.tools_page),
        Route("/tools/{name}", pages.tool_page),
        Route("/tools/{name}/diff", pages.diff_page),
        Route("/tools/{name}/do/{action}", pages.tool_action, methods=["GET", "POST"]),
        Route("/tools/{name}/verdict", pages.verdict, methods=["GET", "POST"]),
        Route("/tools/{name}/rollback", pages.rollback, methods=["GET", "POST"]),
        Route("/prune", pages.prune, methods=["GET", "POST"]),
        Route("/runs", pages.runs_page),
        Route("/runs/{run_id}", pages.run_page),
        Route("/runs/{run_id}/live.json", pages.run_live),
        Route("/tips", pages.notes_page),
        Route("/failures", pages.notes_page),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        404: pages.not_found,
        UnknownToolError: pages.not_found,
        LibraryError: pages.bad_request,
        HTTPException: pages.bad_request,
    }

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            pages.home.close()

    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)  # type: ignore[arg-type]
    if token is not None:
        app.add_middleware(TokenGate, token=token)  # type: ignore[arg-type]
    if hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)  # type: ignore[arg-type]
    return app


class TokenGate:
    """Every request needs the access token: `?token=` once (it sets a cookie), or the
    cookie. Without it: 401 and a page that says how to get in."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token") or request.cookies.get("evoagent_ui", "")
        if not hmac.compare_digest(given, self.token):
            response: Response = HTMLResponse(
                "<h1>401</h1><p>This evoagent ui needs its access token: open the address "
                "`evoagent ui` printed, with <code>?token=…</code>.</p>",
                status_code=401,
            )
            await response(scope, receive, send)
            return
        if request.query_params.get("token"):

            async def with_cookie(message: Any) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"evoagent_ui={self.token}; HttpOnly; SameSite=Strict; Path=/"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            await self.app(scope, receive, with_cookie)
            return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------------- helpers


def _int(value: str | None, default: Any) -> Any:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise HTTPException(400, f"{value!r} is not a number") from None


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _highlight(source: str) -> Markup:
    """Python source as highlighted, escaped HTML (Pygments escapes every token)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return Markup(highlight(source, PythonLexer(), HtmlFormatter(cssclass="hl")))


def _usage_svg(days: list[tuple[str, int, int]]) -> Markup:
    """Uses per day as stacked bars (right below, failed above), inline SVG."""
    if not days:
        return Markup("<p class='muted'>no use on record yet</p>")
    width, height, top = 600, 120, max(ok + bad for _, ok, bad in days)
    bar = width / len(days)
    parts = [f"<svg class='usage' viewBox='0 0 {width} {height + 16}' role='img'>"]
    for i, (day, ok, bad) in enumerate(days):
        x = i * bar
        h_ok, h_bad = height * ok / top, height * bad / top
        parts.append(
            f"<rect x='{x:.1f}' y='{height - h_ok:.1f}' width='{max(bar - 1, 1):.1f}' "
            f"height='{h_ok:.1f}' fill='#3a7'><title>{day}: {ok} right</title></rect>"
        )
        if bad:
            parts.append(
                f"<rect x='{x:.1f}' y='{height - h_ok - h_bad:.1f}' width='{max(bar - 1, 1):.1f}'"
                f" height='{h_bad:.1f}' fill='#c44'><title>{day}: {bad} failed</title></rect>"
            )
    parts.append(f"<text x='0' y='{height + 14}' font-size='11'>{days[0][0]}</text>")
    parts.append(
        f"<text x='{width}' y='{height + 14}' font-size='11' text-anchor='end'>{days[-1][0]}</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _run_store(home: Path, run_id: str) -> Any:
    from agent.stream.store import RunStore

    try:
        return RunStore.open(home, run_id)
    except Exception as exc:
        raise HTTPException(404, f"no run {run_id!r} in {home}") from exc


def _report_body(store: Any, cache: dict[str, tuple[tuple[float, int], str]]) -> str:
    """The report's page (agent/stream/report.py) without its document shell, kept in
    `cache` until the run's results change (the charts take a second to draw)."""
    from agent.stream.report import render

    results = store.dir / "results.jsonl"
    stat = results.stat() if results.exists() else None
    key = (stat.st_mtime, stat.st_size) if stat else (0.0, 0)
    cached = cache.get(str(store.dir))
    if cached is None or cached[0] != key:
        html, _ = render(store)
        body = html.split("<body>", 1)[-1].rsplit("</body>", 1)[0]
        cache[str(store.dir)] = cached = (key, body)
    return cached[1]


def _live(store: Any) -> dict[str, Any]:
    """What a page following a run shows: its progress, the rolling solve rate of its last
    20 tasks, and the tools each finished batch admitted; from the run folder only."""
    meta = store.meta()
    rows = store.results()  # read once: it is polled every 2 s, and may be long
    recent = rows[-20:]
    solved = sum(1 for r in recent if r.get("status") == "solved")
    return {
        "run_id": store.run_id,
        "status": store.status(meta),
        "n_done": len(rows),
        "n_tasks": int(meta.get("n_tasks", 0)),
        "rolling_solve_rate": round(solved / len(recent), 3) if recent else None,
        "last": [{"id": r["id"], "status": r["status"]} for r in rows[-5:]],
        "tools_per_batch": [
            sum(len(names) for names in (b.get("created") or {}).values()) for b in store.batches()
        ],
    }
