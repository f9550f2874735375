"""The dashboard in a real Chromium (Debian's, through Playwright): what a person sees and does.

Skipped when no Chromium is found, unless ``DURABLY_CHROMIUM`` names one (``.ci/run`` installs
Debian's ``chromium`` and sets it, so there the tests must run). ``DURABLY_SCREENSHOTS=DIR`` saves
the README's screenshots there.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

from durably.core.engine.engine import Engine  # noqa: E402
from durably.server import AccessKey, BackgroundServer  # noqa: E402

from .handlers import XSS, Shown, sleeper  # noqa: E402

Page = Any


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = os.environ.get("DURABLY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip("no Chromium here (apt-get install chromium, or set DURABLY_CHROMIUM)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any, server: BackgroundServer) -> Iterator[Callable[..., Page]]:
    """``open_page(path, width=1280)``: a fresh page on ``path``; it fails the test on a script error
    or on any request to another host than the server."""
    contexts: list[Any] = []
    problems: list[str] = []
    host = urllib.parse.urlsplit(server.url).netloc

    def opened(path: str, width: int = 1280, base: str = server.url, **options: Any) -> Page:
        context = browser.new_context(viewport={"width": width, "height": 900}, **options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))

        def only_this_server(route: Any) -> None:
            if urllib.parse.urlsplit(route.request.url).netloc not in (host, urllib.parse.urlsplit(base).netloc):
                problems.append(f"request to another host: {route.request.url}")
                route.abort()
            else:
                route.continue_()
        page.route("**/*", only_this_server)
        page.goto(base + path)
        return page

    yield opened
    for context in contexts:
        context.close()
    assert problems == []


def page_of(arn: str) -> str:
    return "/executions/" + urllib.parse.quote(arn)


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("DURABLY_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def wait_until(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_list_shows_a_new_execution_without_a_reload(open_page: Callable[..., Page], engine: Engine) -> None:
    page = open_page("/")
    rows = page.locator("table.executions tbody tr")
    playwright_api.expect(rows).to_have_count(7)
    screenshot(page, "dashboard-executions")
    engine.start_execution(sleeper, {}, name="started-later")
    playwright_api.expect(page.locator("tr", has_text="started-later")).to_be_visible(timeout=10_000)
    playwright_api.expect(page.locator("tr", has_text="started-later").locator(".status")).to_have_text("RUNNING")


def test_a_rolled_back_saga_draws_a_node_per_operation_and_its_undo_edges(open_page: Callable[..., Page],
                                                                        engine: Engine, shown: Shown) -> None:
    page = open_page(page_of(shown.rolled_back))
    operations = [op for op in engine.service.all_operations(shown.rolled_back) if op.Type != "EXECUTION"]
    nodes = page.locator("svg.graph g.node")
    playwright_api.expect(nodes).to_have_count(len(operations))
    assert sorted(nodes.locator("text.name").all_text_contents()) == sorted(op.Name or "" for op in operations)
    playwright_api.expect(page.locator("svg.graph path.edge.undo")).to_have_count(2)
    playwright_api.expect(page.locator("svg.graph g.group.Saga")).to_have_count(1)
    page.locator("#graph").scroll_into_view_if_needed()
    screenshot(page, "dashboard-saga-graph")
    failed = page.locator("svg.graph g.node.FAILED", has_text="create_shipment")
    failed.click()
    details = page.locator(f"#op-{failed.get_attribute('data-op')} > details")
    playwright_api.expect(details).to_have_attribute("open", "")


def test_the_agent_graph_shows_its_turns(open_page: Callable[..., Page], engine: Engine, shown: Shown) -> None:
    page = open_page(page_of(shown.agent))
    operations = [op for op in engine.service.all_operations(shown.agent) if op.Type != "EXECUTION"]
    playwright_api.expect(page.locator("svg.graph g.node")).to_have_count(len(operations))
    playwright_api.expect(page.locator("svg.graph g.node", has_text="model")).to_have_count(2)
    playwright_api.expect(page.locator("svg.graph g.group.ToolCall")).to_have_count(2)
    playwright_api.expect(page.locator("svg.graph g.node.STARTED", has_text="approve refund")).to_have_count(2)


def test_the_timeline_shows_the_retries(open_page: Callable[..., Page], engine: Engine, shown: Shown) -> None:
    page = open_page(page_of(shown.retried))
    step = next(op for op in engine.service.all_operations(shown.retried) if op.Name == "flaky")
    row = page.locator(f'.timeline .row[data-op="{step.Id}"]')
    playwright_api.expect(row.locator(".bar.failed")).to_have_count(2)
    playwright_api.expect(row.locator(".bar.retry-wait")).to_have_count(2)
    boxes = [row.locator(".bar").nth(i).bounding_box() for i in range(5)]
    assert all(box is not None and box["width"] >= 2 for box in boxes)
    assert [box["x"] for box in boxes if box] == sorted(box["x"] for box in boxes if box)  # in time order


def test_approving_from_the_inbox_resumes_the_agent_to_succeeded(open_page: Callable[..., Page], engine: Engine,
                                                                shown: Shown) -> None:
    engine.start()  # a worker runs the execution once it is answered
    page = open_page("/inbox")
    approval = page.locator("article.waiting", has_text="Approve refund")
    playwright_api.expect(approval.locator("pre.args")).to_contain_text('"amount": 180')
    screenshot(page, "dashboard-inbox")
    approval.get_by_role("button", name="Approve", exact=True).click()
    playwright_api.expect(page.locator(".notice.done")).to_have_text("approved")
    wait_until(lambda: engine.get_execution(shown.agent)["Status"] == "SUCCEEDED")
    playwright_api.expect(page.locator("article.waiting", has_text="Approve refund")).to_have_count(0)
    detail = open_page(page_of(shown.agent))
    playwright_api.expect(detail.locator("h1 .status")).to_have_text("SUCCEEDED")


def test_stop_ends_a_running_execution(open_page: Callable[..., Page], engine: Engine) -> None:
    arn = engine.start_execution(sleeper, {}, name="to-stop")
    engine.run_until_suspended(arn)
    page = open_page(page_of(arn))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop execution").click()
    playwright_api.expect(page.locator("h1 .status")).to_have_text("STOPPED")
    assert engine.get_execution(arn)["Status"] == "STOPPED"


def test_markup_in_user_data_renders_as_text(open_page: Callable[..., Page], shown: Shown) -> None:
    page = open_page(page_of(shown.hostile))
    playwright_api.expect(page.locator("svg.graph g.node")).to_have_count(1)
    assert page.evaluate("window.__xss") is None
    assert page.locator("svg.graph text.name").text_content() == XSS[:31] + "…"
    playwright_api.expect(page.locator(".error-box")).to_contain_text(XSS)
    assert page.locator("img").count() == 0


def test_a_server_with_credentials_refuses_a_browser_without_them(browser: Any, engine: Engine,
                                                                   shown: Shown) -> None:
    with BackgroundServer(engine, access_key=AccessKey("ops", "s3cret")) as server:
        anonymous = browser.new_context()
        try:  # headless Chromium ends a 401 it has no credentials for as an auth error
            with pytest.raises(playwright_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
                anonymous.new_page().goto(server.url + "/")
            assert anonymous.request.get(server.url + "/inbox").status == 401
        finally:
            anonymous.close()
        signed_in = browser.new_context(http_credentials={"username": "ops", "password": "s3cret"})
        try:
            page = signed_in.new_page()
            assert page.goto(server.url + page_of(shown.fan_out)).status == 200
            playwright_api.expect(page.locator("svg.graph g.node")).to_have_count(
                len(engine.service.all_operations(shown.fan_out)) - 1)
        finally:
            signed_in.close()


@pytest.mark.parametrize("path", ["/", "/inbox", "agent"])
def test_a_phone_width_window_needs_no_sideways_scrolling(open_page: Callable[..., Page], shown: Shown,
                                                          path: str) -> None:
    page = open_page(page_of(shown.agent) if path == "agent" else path, width=390)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
