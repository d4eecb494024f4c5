"""A local HTTP server speaking OpenAI's chat completions protocol: the test double for a hosted Oracle.

No hosted model can run here; everything on our side of the socket is real code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOracle:
    """Answers each POST with the next scripted (status, body, headers, delay), a body of None being the normal
    completion; then with a normal completion."""

    def __init__(self, responder: Callable[[dict, int], tuple[str, str]] | None = None):
        # responder(body, choice index) -> (content, finish_reason); default echoes the question.
        self.responder = responder or (lambda body, i: (f"answer {i} to {body['messages'][-1]['content']}",
                                                        "length" if i == 1 else "stop"))
        self.script: list[tuple[int, dict, dict, float]] = []
        self.requests: list[dict] = []
        self.arrivals: list[float] = []  # when each request came in (time.monotonic())
        self.headers: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.delay_s = 0.0
        # the reply's `usage` for a request body (None: the server reports none, as some do)
        self.usage: Callable[[dict], dict] | None = lambda body: {"prompt_tokens": 10,
                                                                  "completion_tokens": 6 * body["n"]}
        self.gate = 0  # when set, each request is held until this many are in flight together (or 10 s pass)
        self.lock = threading.Condition()
        oracle = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with oracle.lock:
                    oracle.requests.append(body)
                    oracle.arrivals.append(time.monotonic())
                    oracle.headers.append(dict(self.headers))
                    oracle.in_flight += 1
                    oracle.max_in_flight = max(oracle.max_in_flight, oracle.in_flight)
                    status, reply, headers, delay = oracle.script.pop(0) if oracle.script else (
                        200, None, {}, oracle.delay_s)
                    reply = oracle.completion(body) if reply is None else reply  # None: the normal answer
                    oracle.lock.notify_all()
                    oracle.lock.wait_for(lambda: oracle.in_flight >= oracle.gate, timeout=10)
                try:
                    time.sleep(delay)
                    payload = json.dumps(reply).encode()
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left
                finally:
                    with oracle.lock:
                        oracle.in_flight -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def completion(self, body: dict) -> dict:
        replies = [self.responder(body, i) for i in range(body["n"])]
        reply = {"choices": [{"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
                             for i, (content, finish) in enumerate(replies)]}
        if self.usage is not None:
            reply["usage"] = self.usage(body)
        return reply

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
