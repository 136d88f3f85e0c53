"""A real local HTTP server speaking the chat-completions API, scripted by the test.

Each request takes the next step of ``script`` (then ``default``):

    "good"        a valid summary JSON for the document in the prompt
    "fenced"      the same inside a Markdown code fence, with chatter around it
    "malformed"   a reply that is not JSON
    "incomplete"  JSON without the required "summary"
    "429:N"       429 Too Many Requests with Retry-After: N
    "500"         an internal server error
    "401", "403", "400"
    "slow:N"      sleep N seconds, then answer well
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def good_summary(prompt: str) -> dict:
    name = re.search(r"File name: (.+)", prompt)
    words = re.findall(r"[A-Za-z]{4,}", prompt.split("Document text", 1)[-1])
    return {
        "title": f"About {words[0] if words else 'nothing'}",
        "summary": f"A document named {name.group(1) if name else '?'} about {' '.join(words[:3])}.",
        "document_type": "receipt" if "total" in prompt.lower() else "other",
        "entities": [{"name": "Corner Bakery", "type": "organization"}, "Springfield"],
        "topics": [w.lower() for w in words[:3]],
        "metadata": {"vendor": "Corner Bakery", "date": "2026-03-14", "total": 14.58, "currency": "USD",
                     "line_items": [{"description": "Sourdough loaf", "amount": 4.5}]},
    }


class ChatServer:
    def __init__(self):
        self.script: list[str] = []
        self.default = "good"
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "authorization": self.headers.get("Authorization")})
                    step = server.script.pop(0) if server.script else server.default
                if not self.path.endswith("/chat/completions"):
                    return self._reply(404, {"error": {"message": "no such route"}})
                kind, _, arg = step.partition(":")
                if kind == "slow":
                    time.sleep(float(arg))
                    kind = "good"
                if kind in ("401", "403", "400", "500"):
                    messages = {"401": "Incorrect API key provided", "403": "model access denied",
                                "400": "Unknown parameter", "500": "the model crashed"}
                    return self._reply(int(kind), {"error": {"message": messages[kind], "type": "error"}})
                if kind == "429":
                    return self._reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": arg or "1"})
                prompt = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
                content = {
                    "good": lambda: json.dumps(good_summary(prompt)),
                    "fenced": lambda: "Sure! Here it is:\n```json\n" + json.dumps(good_summary(prompt)) + "\n```",
                    "malformed": lambda: "{'title': 'oops', summary: not json",
                    "incomplete": lambda: json.dumps({"title": "No summary here"}),
                }[kind]()
                self._reply(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                })

            def _reply(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that gave up waiting (the timeout tests) is not an error here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
