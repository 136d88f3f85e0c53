"""Passwords, keys and tokens never reach what a person sees: the Redis URL in every form redis-py
accepts, and the LLM endpoint's URL in job errors, the Settings dialog's Test button and the log."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from redis.connection import parse_url

from snapdesk.config import ConfigError, load_settings, redact_text, redact_url
from snapdesk.processors.errors import PermanentError, RetryableError
from snapdesk.processors.summary import check_endpoint, summarize_llm

from chat_server import good_summary


def _closed_port() -> int:
    """A port nothing listens on (it was free a moment ago, and only this test uses it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the Redis URL ---------------------------------------------------------------------------
@pytest.mark.parametrize("url, shown", [
    ("redis://:hunter2@redis.example:6379/0", "redis://:***@redis.example:6379/0"),
    ("redis://snapdesk:hunter2@redis.example:6379/0", "redis://snapdesk:***@redis.example:6379/0"),
    ("redis://redis.example:6379/0?password=hunter2", "redis://redis.example:6379/0?password=***"),
    ("redis://redis.example/0?db=2&password=hunter2&socket_timeout=5",
     "redis://redis.example/0?db=2&password=***&socket_timeout=5"),
    ("redis://redis.example/0?pass%77ord=hunter2", "redis://redis.example/0?pass%77ord=***"),  # redis-py decodes it
    ("redis://snapdesk:hunter2@redis.example/0?password=hunter3", "redis://snapdesk:***@redis.example/0?password=***"),
    ("rediss://redis.example:6380/0?ssl_ca_certs=/etc/snapdesk/ca.crt&ssl_certfile=/etc/snapdesk/me.crt"
     "&ssl_keyfile=/etc/snapdesk/me.key&ssl_password=hunter2",
     "rediss://redis.example:6380/0?ssl_ca_certs=/etc/snapdesk/ca.crt&ssl_certfile=/etc/snapdesk/me.crt"
     "&ssl_keyfile=/etc/snapdesk/me.key&ssl_password=***"),
    ("redis://:hunter2@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
    ("unix://:hunter2@/run/redis/redis.sock?db=1", "unix://:***@/run/redis/redis.sock?db=1"),
    ("unix:///run/redis/redis.sock?password=hunter2", "unix:///run/redis/redis.sock?password=***"),
])
def test_the_redis_password_is_hidden_in_every_form_redis_py_accepts(url, shown):
    assert redact_url(url) == shown
    secrets = {v for k, v in parse_url(url).items() if "password" in k}
    assert secrets and not any(secret in redact_url(url) for secret in secrets)


def test_a_password_parameter_in_any_case_is_hidden():
    # redis-py itself only reads "password" in lower case; other spellings are hidden all the same.
    assert redact_url("redis://h/0?db=2&PassWord=hunter2&PASSWORD=hunter3&socket_timeout=5") == \
        "redis://h/0?db=2&PassWord=***&PASSWORD=***&socket_timeout=5"


def test_a_user_name_alone_is_hidden_as_it_is_often_the_password_in_the_wrong_place():
    # redis-py sends it as the ACL user name with an empty password, and the server's refusal
    # would otherwise show it; "user:password@" is how a user name and password are given.
    assert redact_url("redis://hunter2@redis.example:6379/0") == "redis://***@redis.example:6379/0"
    assert redact_url("https://sk-hunter2@llm.example/v1") == "https://***@llm.example/v1"


@pytest.mark.parametrize("url", [
    "redis://redis.example:6379/0",
    "rediss://redis.example:6380/0?ssl_ca_certs=/etc/snapdesk/ca.crt&ssl_cert_reqs=required&db=3",
    "unix:///run/redis/redis.sock?db=1",
    "redis://redis.example/0?password=",  # nothing to hide
    "",
])
def test_a_url_without_a_password_is_shown_as_given(url):
    assert redact_url(url) == url


@pytest.mark.parametrize("url, secret, shown", [
    # An unencoded "#", "/" or "@" in a password: the parsers disagree on where the host starts,
    # so everything from :// to the last "@" is hidden.
    ("redis://:hunter#2@redis.example:6379/0", "hunter", "redis://***@redis.example:6379/0"),
    ("redis://:hun/ter2@redis.example:6379/0", "ter2", "redis://***@redis.example:6379/0"),
    ("redis://u:hun@ter#2@redis.example/0", "ter", "redis://***@redis.example/0"),
    ("redis://:12/34@redis.example/0", "34", "redis://***@redis.example/0"),
    ("redis://redis.example/0?client_name=me@box", "me", "redis://***@box"),  # over-cautious, but safe
    # An unencoded "&" or "#" in a query password: hidden up to the next parameter.
    ("redis://redis.example/0?password=hun&ter2&db=1", "ter2", "redis://redis.example/0?password=***&db=1"),
    ("redis://redis.example/0?password=hun#ter2", "ter2", "redis://redis.example/0?password=***"),
    ("snapdesk:hunter2@redis.example:6379", "hunter2", "snapdesk:***@redis.example:6379"),  # no scheme
])
def test_an_ambiguous_url_hides_all_that_may_be_the_password(url, secret, shown):
    assert redact_url(url) == shown
    assert secret not in redact_url(url)


@pytest.mark.parametrize("odd", [None, 42, b"redis://:x@h", "://", "@", "redis://", "redis://@", "redis://[::1",
                                 "redis://h:port/0", "redis://:@", "?password", "?password=&&&", "%", "\x00://\x00@",
                                 "redis://" + "a" * 10_000 + "@h", "redis://h/0?" + "&" * 1000])
def test_redact_url_never_raises(odd):
    assert isinstance(redact_url(odd), str)
    assert isinstance(redact_text(odd, odd), str)


def test_a_bad_redis_url_is_refused_without_echoing_its_password():
    with pytest.raises(ConfigError) as error:
        load_settings(env={}, redis_url="http://:hunter2@redis.example:6379/0?password=hunter3")
    assert "hunter" not in str(error.value)
    assert "http://:***@redis.example:6379/0?password=***" in str(error.value)


def test_redact_text_hides_the_urls_and_their_secrets_on_their_own():
    url = "https://me:s3cret%21@llm.example/v1?api_key=k-123&api-version=2024"
    text = (f"POST {url}/chat/completions failed; upstream said: bad key k-123 for me (password s3cret!); "
            "also tried redis://:hunter2@redis.example/0")
    shown = redact_text(text, url)
    for secret in ("s3cret", "k-123", "hunter2"):
        assert secret not in shown
    assert "https://me:***@llm.example/v1?api_key=***&api-version=2024" in shown
    assert "redis://:***@redis.example/0" in shown


# -- the LLM endpoint ------------------------------------------------------------------------
class EchoServer:
    """A chat-completions endpoint that records each request; ``reject`` makes it answer 400 with
    the request's path and query in its message, as some proxies do."""

    def __init__(self):
        self.requests = []
        self.reject = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
                if server.reject:
                    return self._reply(400, {"error": {"message": f"unknown parameter in {self.path}"}})
                prompt = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
                self._reply(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                  "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                      "role": "assistant", "content": json.dumps(good_summary(prompt))}}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def endpoint():
    server = EchoServer()
    yield server
    server.close()


def test_an_unreachable_endpoint_is_named_without_its_password():
    port = _closed_port()
    with pytest.raises(RetryableError) as error:
        summarize_llm("Some text", "a.jpg", base_url=f"http://user:hunter2@127.0.0.1:{port}/v1", api_key="",
                      model="m", timeout=5)
    message = str(error.value)
    assert "hunter2" not in message
    assert message == f"cannot reach the LLM endpoint http://user:***@127.0.0.1:{port}/v1"


@pytest.mark.parametrize("query", ["key", "api_key", "apikey", "API_KEY", "token", "access_token", "password",
                                   "secret", "client_secret", "x-api-key"])
def test_a_key_in_the_endpoints_query_is_hidden(query):
    port = _closed_port()
    with pytest.raises(RetryableError) as error:
        summarize_llm("Some text", "a.jpg", base_url=f"http://127.0.0.1:{port}/v1?{query}=hunter2&api-version=2024",
                      api_key="", model="m", timeout=5)
    assert str(error.value) == f"cannot reach the LLM endpoint http://127.0.0.1:{port}/v1?{query}=***&api-version=2024"


def test_a_token_as_the_user_name_is_hidden():
    port = _closed_port()
    with pytest.raises(RetryableError) as error:
        summarize_llm("Some text", "a.jpg", base_url=f"https://hunter2token@127.0.0.1:{port}/v1", api_key="",
                      model="m", timeout=5)
    assert str(error.value) == f"cannot reach the LLM endpoint https://***@127.0.0.1:{port}/v1"


def test_the_settings_test_button_hides_the_password_too():
    port = _closed_port()
    with pytest.raises(RetryableError) as error:
        check_endpoint(f"http://user:hunter2@127.0.0.1:{port}/v1?token=hunter3", "", "m", timeout=5)
    assert "hunter" not in str(error.value) and f"127.0.0.1:{port}" in str(error.value)


def test_an_invalid_endpoint_url_is_a_permanent_error_without_its_password():
    with pytest.raises(PermanentError) as error:
        summarize_llm("Some text", "a.jpg", base_url="http://user:hunter2@127.0.0.1:notaport/v1", api_key="",
                      model="m", timeout=5)
    assert "hunter2" not in str(error.value)
    assert "http://user:***@127.0.0.1:notaport/v1 is not a valid URL" in str(error.value)


def test_what_the_endpoint_says_back_is_redacted(endpoint):
    endpoint.reject = True
    with pytest.raises(PermanentError) as error:
        summarize_llm("Some text", "a.jpg", base_url=f"http://{endpoint.host}/v1?key=hunter2", api_key="", model="m",
                      timeout=5)
    assert endpoint.requests[0]["path"] == "/v1/chat/completions?key=hunter2"  # the proxy saw the key...
    assert "hunter2" not in str(error.value)  # ...and echoed it, but the person does not see it
    assert "rejected the request (400: unknown parameter in /v1/chat/completions?key=***)" in str(error.value)


def test_credentials_in_the_endpoint_url_work_and_stay_out_of_the_log(endpoint, caplog):
    """User and password go as HTTP basic auth, query parameters with every request; the HTTP
    client's log line for each request shows neither."""
    caplog.set_level(logging.INFO)
    result = summarize_llm("CORNER BAKERY total 4.50", "r.jpg", base_url=f"http://user:hunter2@{endpoint.host}/v1"
                           "?key=hunter3&api-version=2024", api_key="", model="m", timeout=5)
    assert result["source"] == "llm"
    request = endpoint.requests[0]
    assert request["path"] == "/v1/chat/completions?key=hunter3&api-version=2024"
    assert request["authorization"] == "Basic dXNlcjpodW50ZXIy"  # user:hunter2
    http_lines = [r.getMessage() for r in caplog.records if r.name in ("httpx", "httpx2")]
    assert http_lines and "/v1/chat/completions" in http_lines[0]
    assert "user:***@" in http_lines[0] and "key=***" in http_lines[0]
    assert "hunter" not in caplog.text
