"""A small OpenAI-compatible chat server on 127.0.0.1, for the real provider path.

`langchain-openai` talks to it over HTTP exactly as to vLLM or llama.cpp:

    with FakeOpenAIServer(lambda request: "4") as server:
        model = get_model("openai:test-model", base_url=server.base_url)

`responder(request_json) -> str` gives each reply's text; `status` (settable while the
server runs) makes every call answer that HTTP error instead; a request holding a field
named in `refuse_fields` gets the HTTP 400 the OpenAI API gives for an unknown argument
(as a server without grammars would). Every request body is kept
in `requests`. Usage in replies is ceil(chars / 4) of the prompt and of the reply, so a
test can tell the provider's figures from the counter's own estimate (it adds 1000 to
prompt tokens: see `PROMPT_TOKEN_OFFSET`).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], str]

PROMPT_TOKEN_OFFSET = 1000
"""Added to the reported prompt tokens, so provider usage differs from any estimate."""


def prompt_of(request: dict[str, Any]) -> str:
    """The request's messages' contents joined with newlines (the scripted prompt text)."""
    parts = []
    for message in request.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(block.get("text", "") for block in content)
        parts.append(content or "")
    return "\n".join(parts)


class FakeOpenAIServer:
    def __init__(
        self,
        responder: Responder | None = None,
        status: int = 200,
        refuse_fields: frozenset[str] = frozenset(),
    ) -> None:
        self.responder: Responder = responder or (lambda request: "hello from the fake server")
        self.status = status
        self.refuse_fields = refuse_fields
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _reply(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            status = self.status
        refused = sorted(self.refuse_fields & set(request))
        if refused:
            return 400, {
                "error": {
                    "message": f"Unrecognized request argument supplied: {refused[0]}",
                    "type": "invalid_request_error",
                }
            }
        if status != 200:
            return status, {
                "error": {"message": f"fake server error {status}", "type": "server_error"}
            }
        text = self.responder(request)
        prompt_tokens = math.ceil(len(prompt_of(request)) / 4) + PROMPT_TOKEN_OFFSET
        completion_tokens = math.ceil(len(text) / 4)
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    request = json.loads(body)
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                self._send(*fake._reply(request))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        return Handler


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
