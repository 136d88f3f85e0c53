"""A real local HTTP server speaking the chat-completions API, scripted by the test.

Each request takes the next step of ``script`` (then ``default``):

    "good"        a valid summary JSON for the document in the prompt
    "fenced"      the same inside a Markdown code fence, with chatter around it
    "malformed"   a reply that is not JSON
    "incomplete"  JSON without the required "summary"
    "429:N"       429 Too Many Requests with Retry-After: N
    "500"         an internal server error
    "401", "403", "400", "404"
    "slow:N"      sleep N seconds, then answer well
    "schema400"   400 for a request with ``response_format`` (a server without structured output)

A chat request with a picture in it (an ``image_url`` part) is answered as a vision model would:
"good" describes what ``see`` finds in the picture (the colour and shape of its main object, the
background, and the text the prompt says is in it). ``POST /v1/embeddings`` answers with
deterministic vectors (``embed_words``: each word of the text hashed into ``dim`` numbers, so texts
that share words are near) or the error of its script step, like chat requests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

STOPWORDS = frozenset("a an and the of on in at with to for by is it its this that text tags colours objects".split())
#: The colours ``see`` names, and their RGB.
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220), "yellow": (240, 220, 30),
           "orange": (245, 140, 20), "purple": (140, 40, 180), "pink": (245, 130, 190), "cyan": (30, 200, 220),
           "brown": (120, 70, 30), "black": (15, 15, 15), "white": (245, 245, 245), "gray": (128, 128, 128)}


def _stem(word: str) -> str:
    """A crude stemmer: "says", "saying" and "said" are one word to it, as to any real model."""
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            return word[:-len(suffix)]
    return word


def embed_words(text: str, dim: int = 1024) -> list[float]:
    """A deterministic unit vector: each distinct word, and each pair of words that follow each other
    (stop words left out, crudely stemmed), adds +-1 at two hashed places; so "red circle" is nearer "a red circle"
    than "a blue circle on red"."""
    vector = np.zeros(dim, dtype=np.float64)
    words = [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]
    for word in set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}:
        digest = hashlib.md5(word.encode()).digest()
        for k in (0, 4):
            index = int.from_bytes(digest[k:k + 3], "little") % dim
            vector[index] += 1.0 if digest[k + 3] & 1 else -1.0
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else np.eye(dim)[0]).tolist()


def _nearest_colour(rgb) -> str:
    return min(COLOURS, key=lambda n: sum((int(a) - b) ** 2 for a, b in zip(rgb, COLOURS[n])))


def see(image_bytes: bytes) -> dict:
    """What a (very small) vision model sees: the background colour, and the colour and shape of the
    largest object of another colour (circle, square or triangle, from how much of its box it fills)."""
    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    image = image.resize((120, max(1, round(120 * image.height / image.width))), Image.Resampling.NEAREST)
    pixels = np.asarray(image).astype(int)
    corners = np.concatenate([pixels[:4, :4].reshape(-1, 3), pixels[-4:, -4:].reshape(-1, 3)])
    background = _nearest_colour(np.median(corners, axis=0))
    palette = np.array(list(COLOURS.values()))
    names = np.array(list(COLOURS))[((pixels[:, :, None, :] - palette) ** 2).sum(-1).argmin(-1)]
    counts = {n: int((names == n).sum()) for n in COLOURS if n not in (background, "white", "black")}
    colour = max(counts, key=counts.get) if counts and max(counts.values()) > 30 else None
    shape = "blob"
    if colour:
        ys, xs = np.nonzero(names == colour)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        fill = len(ys) / box
        shape = "square" if fill > 0.9 else "circle" if fill > 0.66 else "triangle" if fill > 0.35 else "blob"
    return {"background": background, "colour": colour, "shape": shape}


def good_description(prompt: str, image_bytes: bytes) -> dict:
    seen = see(image_bytes)
    words = re.search(r"Text found in it: (.+)", prompt)
    thing = f"{seen['colour']} {seen['shape']}" if seen["colour"] else "plain picture"
    text = words.group(1).strip() if words else ""
    return {
        "description": f"A {thing} on a {seen['background']} background" + (f" with a sign saying {text}" if text else "")
                       + ".",
        "detailed_description": f"The picture shows a {thing}. The background is {seen['background']}.",
        "tags": [t for t in (seen["colour"], seen["shape"], seen["background"], "sign" if text else None) if t],
        "categories": ["object"], "objects": [seen["shape"]] + (["sign"] if text else []),
        "colors": [c for c in (seen["colour"], seen["background"]) if c],
        "mood": "calm", "style": "illustration", "composition": "centred", "searchable_text": f"{thing} {text}",
    }


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
        self.embed_dim = 1024
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
                if not self.path.endswith(("/chat/completions", "/embeddings")):
                    return self._reply(404, {"error": {"message": "no such route"}})
                kind, _, arg = step.partition(":")
                if kind == "schema400" and "response_format" in body:
                    return self._reply(400, {"error": {"message": "response_format is not supported", "type": "error"}})
                if kind == "schema400":
                    kind = "good"
                if kind == "slow":
                    time.sleep(float(arg))
                    kind = "good"
                if kind in ("401", "403", "400", "404", "500"):
                    messages = {"401": "Incorrect API key provided", "403": "model access denied",
                                "400": "Unknown parameter", "404": "model not found", "500": "the model crashed"}
                    return self._reply(int(kind), {"error": {"message": messages[kind], "type": "error"}})
                if kind == "429":
                    return self._reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": arg or "1"})
                if self.path.endswith("/embeddings"):
                    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    return self._reply(200, {"object": "list", "model": body["model"], "data": [
                        {"object": "embedding", "index": i, "embedding": embed_words(t, server.embed_dim)}
                        for i, t in enumerate(texts)], "usage": {"prompt_tokens": 5, "total_tokens": 5}})
                parts = [p for m in body["messages"] if m["role"] == "user"
                         for p in (m["content"] if isinstance(m["content"], list) else [{"type": "text",
                                                                                          "text": m["content"]}])]
                prompt = "\n".join(p["text"] for p in parts if p["type"] == "text")
                image = next((p["image_url"]["url"] for p in parts if p["type"] == "image_url"), None)
                if image and kind == "good":
                    kind = "vision"
                content = {
                    "vision": lambda: json.dumps(good_description(prompt, base64.b64decode(image.split(",", 1)[1]))),
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
