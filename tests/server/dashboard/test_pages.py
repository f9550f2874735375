"""The dashboard's pages and actions over HTTP: what they show, escaping, CSRF, credentials."""

from __future__ import annotations

import base64
import html
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from durably.core.engine.engine import Engine
from durably.server import AccessKey, BackgroundServer

from .handlers import Shown


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Answer:
    status: int
    text: str
    headers: dict[str, str]


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)
        self.headers = headers or {}

    def get(self, path: str) -> Answer:
        return self._send(urllib.request.Request(self.base + path, headers=self.headers))

    def post(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> Answer:
        data = urllib.parse.urlencode(form).encode()
        return self._send(urllib.request.Request(self.base + path, data=data, method="POST",
                                                 headers={**self.headers, **(headers or {})}))

    def _send(self, request: urllib.request.Request) -> Answer:
        try:
            with self.opener.open(request) as response:
                return Answer(response.status, response.read().decode(), _lower(response.headers.items()))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode(), _lower(exc.headers.items()))

    @property
    def csrf(self) -> str:
        return str(next(c.value for c in self.cookies if c.name == "durably_csrf"))


def page_of(arn: str) -> str:
    return "/executions/" + urllib.parse.quote(arn)


def test_the_list_shows_every_execution_and_filters_them(server: BackgroundServer, shown: Shown) -> None:
    browser = Browser(server.url)
    listing = browser.get("/")
    assert listing.status == 200
    for name in ("order-A-1", "order-A-2", "refund-B-2", "retried", "hostile", "sign-off", "fan-out"):
        assert f">{name}</a>" in listing.text
    running = browser.get("/?status=RUNNING").text
    assert "refund-B-2" in running and "sign-off" in running and "order-A-1" not in running
    assert "order-A-2" in browser.get("/?q=A-2").text and "order-A-1" not in browser.get("/?q=A-2").text
    assert "No executions match." in browser.get("/?q=nothing-like-this").text
    assert browser.get("/ui/rows?status=FAILED").text.count("<tr data-arn=") == 2  # the saga and hostile


def test_the_list_pages(server: BackgroundServer, shown: Shown, monkeypatch: pytest.MonkeyPatch) -> None:
    from durably.server.dashboard import _views
    monkeypatch.setattr(_views, "PAGE_SIZE", 3)
    browser = Browser(server.url)
    first = browser.get("/").text
    older = re.search(r'href="/\?([^"]*page=3)"', first)
    assert first.count("<tr data-arn=") == 3 and older is not None
    second = browser.get("/?" + older.group(1).replace("&amp;", "&")).text
    assert second.count("<tr data-arn=") == 3 and "newer" in second
    assert set(re.findall(r'data-arn="([^"]+)"', first)).isdisjoint(re.findall(r'data-arn="([^"]+)"', second))


def test_an_execution_page_has_its_parts(server: BackgroundServer, shown: Shown) -> None:
    page = Browser(server.url).get(page_of(shown.rolled_back))
    assert page.status == 200
    for part in ('id="graph"', 'id="timeline"', 'id="operations"', 'id="history"', 'id="logs"',
                 "SagaRolledBack", "ExecutionFailed", "compensation"):
        assert part in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_user_data_is_escaped_everywhere(server: BackgroundServer, shown: Shown) -> None:
    page = Browser(server.url).get(page_of(shown.hostile)).text
    assert "<script>window.__xss" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__xss" in page
    assert "about to return &lt;script&gt;" in page  # its log line
    graph = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', page, re.S)
    assert graph is not None and "<" not in graph.group(1)  # tojson escapes < > & in the embedded graph


def test_an_unknown_execution_is_a_404_page(server: BackgroundServer) -> None:
    page = Browser(server.url).get(page_of("arn:aws:lambda:us-east-1:000000000000:function:f/durable-execution/x/y"))
    assert page.status == 404 and "Not found" in page.text


def test_a_large_payload_is_cut_with_a_link_to_all_of_it(server: BackgroundServer, engine: Engine) -> None:
    from .handlers import sign_off
    arn = engine.start_execution(sign_off, {}, name="big")
    engine.run_until_suspended(arn)
    [callback] = [c for c in engine.service.open_callbacks() if c.arn == arn]
    assert callback.operation.CallbackDetails is not None and callback.operation.CallbackDetails.CallbackId
    engine.send_callback_success(callback.operation.CallbackDetails.CallbackId, "x" * 50_000)
    engine.run_until_complete(arn, skip_time=True)
    browser = Browser(server.url)
    page = browser.get(page_of(arn)).text
    link = re.search(r'href="(/ui/payload\?[^"]+)">see all ([\d,]+) characters', page)
    assert link is not None and "x" * 50_000 not in page
    whole = browser.get(link.group(1).replace("&amp;", "&"))
    assert whole.status == 200 and whole.headers["content-type"].startswith("text/plain") and "x" * 50_000 in whole.text


def test_an_action_without_the_csrf_token_or_from_another_site_is_refused(server: BackgroundServer, engine: Engine,
                                                                          shown: Shown) -> None:
    browser = Browser(server.url)
    browser.get("/")
    form = {"arn": shown.sign_off, "next": "/"}
    assert browser.post("/ui/stop", form).status == 403
    assert browser.post("/ui/stop", {**form, "csrf": "forged"}).status == 403
    assert browser.post("/ui/stop", {**form, "csrf": browser.csrf},
                        headers={"Origin": "http://evil.example"}).status == 403
    assert engine.get_execution(shown.sign_off)["Status"] == "RUNNING"
    done = browser.post("/ui/stop", {**form, "csrf": browser.csrf, "next": "//evil.example/x"},
                        headers={"Origin": server.url})
    assert done.status == 303 and done.headers["location"].startswith("/?done=")  # never another host
    assert engine.get_execution(shown.sign_off)["Status"] == "STOPPED"


def test_a_callback_is_answered_from_the_inbox(server: BackgroundServer, engine: Engine, shown: Shown) -> None:
    browser = Browser(server.url)
    inbox = html.unescape(browser.get("/inbox").text)
    assert "sign-off" in inbox and "Approve <code>refund</code>" in inbox and '"amount": 180' in inbox
    [callback] = [c for c in engine.service.open_callbacks() if c.arn == shown.sign_off]
    callback_id = callback.operation.CallbackDetails.CallbackId  # type: ignore[union-attr]
    sent = browser.post("/ui/answer", {"csrf": browser.csrf, "callback_id": str(callback_id), "outcome": "success",
                                       "payload": "looks good", "next": "/inbox"})
    assert sent.status == 303 and "done=" in sent.headers["location"]
    assert json.loads(engine.run_until_complete(shown.sign_off, skip_time=True)["Result"]) == {"answer": "looks good"}
    again = browser.post("/ui/answer", {"csrf": browser.csrf, "callback_id": str(callback_id), "outcome": "success",
                                        "next": "/inbox"})
    assert "error=" in again.headers["location"]  # answered already: said, not a 500
    shown_again = browser.get(again.headers["location"]).text
    assert 'class="notice error"' in shown_again


def test_wrong_edited_arguments_send_nothing(server: BackgroundServer, engine: Engine, shown: Shown) -> None:
    browser = Browser(server.url)
    browser.get("/inbox")
    [callback] = [c for c in engine.service.open_callbacks() if c.arn == shown.agent]
    callback_id = str(callback.operation.CallbackDetails.CallbackId)  # type: ignore[union-attr]
    for args, said in (("{not json", "not JSON"), ("[1, 2]", "JSON object")):
        answer = browser.post("/ui/approve", {"csrf": browser.csrf, "callback_id": callback_id, "decision": "edit",
                                              "args": args, "next": "/inbox"})
        assert said.replace(" ", "+") in answer.headers["location"]
    assert browser.post("/ui/approve", {"csrf": browser.csrf, "callback_id": callback_id, "decision": "maybe",
                                        "next": "/inbox"}).headers["location"].count("unknown+decision") == 1
    assert [c.arn for c in engine.service.open_callbacks() if c.arn == shown.agent] == [shown.agent]


def test_edit_and_approve_runs_the_tool_with_the_persons_arguments(server: BackgroundServer, engine: Engine,
                                                                     shown: Shown) -> None:
    browser = Browser(server.url)
    browser.get("/inbox")
    [callback] = [c for c in engine.service.open_callbacks() if c.arn == shown.agent]
    callback_id = str(callback.operation.CallbackDetails.CallbackId)  # type: ignore[union-attr]
    args = '{"order_id": "B-2", "item": "lamp", "amount": 90, "reason": "half"}'
    browser.post("/ui/approve", {"csrf": browser.csrf, "callback_id": callback_id, "decision": "edit", "args": args,
                                 "message": "half is fair", "next": "/inbox"})
    done = engine.run_until_complete(shown.agent, skip_time=True)
    assert done["Status"] == "SUCCEEDED"
    refund = next(op for op in engine.service.all_operations(shown.agent) if op.Name == "refund call_2")
    assert refund.ContextDetails is not None and '"amount":90' in (refund.ContextDetails.Result or "").replace(" ", "")


def test_with_an_access_key_every_page_needs_it(engine: Engine, shown: Shown) -> None:
    key = AccessKey("dash-id", "dash-secret")
    with BackgroundServer(engine, access_key=key) as server:
        for path in ("/", "/inbox", page_of(shown.agent), "/ui/rows", "/ui/static/dashboard.js"):
            refused = Browser(server.url).get(path)
            assert refused.status == 401, path
        assert "Basic" in Browser(server.url).get("/").headers["www-authenticate"]
        wrong = base64.b64encode(b"dash-id:nope").decode()
        assert Browser(server.url, {"Authorization": f"Basic {wrong}"}).get("/").status == 401
        right = base64.b64encode(b"dash-id:dash-secret").decode()
        assert Browser(server.url, {"Authorization": f"Basic {right}"}).get("/").status == 200
        assert Browser(server.url, {"Authorization": f"Basic {right}"}).post(
            "/ui/stop", {"arn": shown.sign_off}).status == 403  # credentials alone are not a CSRF token


def test_the_assets_are_served_by_durably_itself(server: BackgroundServer) -> None:
    browser = Browser(server.url)
    page = browser.get("/").text + browser.get(page_of("x")).text
    for src in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert not src.startswith(("http:", "https:", "//")), src
    dagre = browser.get("/ui/static/vendor/dagre-3.1.3.min.js")
    assert dagre.status == 200 and "dagre" in dagre.text
    assert browser.get("/ui/static/vendor/dagre-3.1.3.LICENSE.txt").status == 200


def test_a_failed_execution_is_redriven_from_its_page(server: BackgroundServer, engine: Engine, shown: Shown) -> None:
    browser = Browser(server.url)
    page = browser.get(page_of(shown.rolled_back)).text
    assert 'action="/ui/redrive"' in page
    assert 'action="/ui/redrive"' not in browser.get(page_of(shown.succeeded_order)).text
    done = browser.post("/ui/redrive", {"csrf": browser.csrf, "arn": shown.rolled_back,
                                        "next": page_of(shown.rolled_back)})
    assert done.status == 303 and done.headers["location"].startswith("/executions/")
    new_arn = urllib.parse.unquote(done.headers["location"].split("?")[0][len("/executions/"):])
    assert engine.get_execution(new_arn)["RedriveOf"] == shown.rolled_back
    new_page = html.unescape(browser.get(done.headers["location"]).text)
    assert "Redrive of" in new_page and "a redrive of the execution" in new_page
    again = browser.post("/ui/redrive", {"csrf": browser.csrf, "arn": shown.sign_off, "next": "/"})
    assert "error=" in again.headers["location"]  # a running execution is not redriven
