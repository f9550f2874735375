"""The dashboard's pages and actions, on the engine's service (server-rendered, escaped by Jinja2)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from durably.cli.render import took
from durably.core.engine.engine import Engine
from durably.core.engine.errors import ServiceError
from durably.core.engine.redrive import REDRIVABLE
from durably.core.model import ErrorObject, Operation
from durably.server._sigv4 import AccessKey
from durably.server.dashboard import _reading
from durably.server.dashboard._security import (
    CSRF_FIELD,
    csrf_token,
    refused_action,
    refused_login,
    set_csrf_cookie,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")
PAGE_SIZE = 50
LOG_LIMIT = 2000
Endpoint = Callable[[Request], Awaitable[Response]]


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(ms: int | None) -> str:
    return "" if ms is None or ms < 0 else took(ms)


def _short(arn: str) -> str:
    """``function/name/id`` of an execution ARN, enough to tell executions apart in a table."""
    return arn.split(":function:", 1)[-1]


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_env.filters.update(when=_when, duration=_duration, short=_short, pretty=_reading.pretty)
_env.globals.update(PREVIEW_CHARS=_reading.PREVIEW_CHARS, STATUSES=STATUSES, CSRF_FIELD=CSRF_FIELD)


def _epoch_ms(value: str | None) -> int | None:
    """An ``<input type=datetime-local>`` value (read as UTC) in epoch ms; None when empty or unreadable."""
    if not value:
        return None
    try:
        return int(dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).timestamp() * 1000)
    except ValueError:
        return None


def _safe_next(value: str | None, default: str) -> str:
    """A redirect target on this server only (a path, never another host)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def dashboard_routes(engine: Engine, access_key: AccessKey | None) -> list[BaseRoute]:
    """The pages (``/``, ``/executions/{arn}``, ``/inbox``), their live fragments and actions (``/ui/...``)."""
    service = engine.service

    def page(handler: Callable[[Request, str], Awaitable[Response]]) -> Endpoint:
        async def run(request: Request) -> Response:
            if (refused := refused_login(request, access_key)) is not None:
                return refused
            token = csrf_token(request)
            response = await handler(request, token)
            if request.cookies.get("durably_csrf") != token:
                set_csrf_cookie(response, token)
            response.headers.update({"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                                                 "style-src 'self'; script-src 'self'; "
                                                                 "frame-ancestors 'none'",
                                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})
            return response
        return run

    def action(handler: Callable[[Request, Any], Awaitable[str]]) -> Endpoint:
        async def run(request: Request) -> Response:
            if (refused := refused_login(request, access_key)) is not None:
                return refused
            form = await request.form()
            if (refused := refused_action(request, str(form.get(CSRF_FIELD) or ""))) is not None:
                return refused
            back = _safe_next(str(form.get("next") or ""), "/")
            try:
                notice = {"done": await handler(request, form)}
            except _Redirect as elsewhere:
                return RedirectResponse(elsewhere.target, status_code=303)
            except (ServiceError, ValueError) as exc:
                notice = {"error": str(exc)}
            separator = "&" if "?" in back else "?"
            return RedirectResponse(f"{back.split('#')[0]}{separator}{urlencode(notice)}", status_code=303)
        return run

    def render(name: str, request: Request, token: str, status: int = 200, **values: Any) -> HTMLResponse:
        q = request.query_params
        values.setdefault("notice", {k: q[k] for k in ("done", "error") if k in q})
        kept = urlencode([(k, v) for k, v in q.multi_items() if k not in ("done", "error")])
        here = request.url.path + (f"?{kept}" if kept else "")
        html = _env.get_template(name).render(request=request, csrf=token, path=request.url.path, here=here,
                                              **values)
        return HTMLResponse(html, status_code=status)

    def listing(request: Request) -> dict[str, Any]:
        q = request.query_params
        statuses = [s for s in q.getlist("status") if s in STATUSES]
        marker = q.get("page") if (q.get("page") or "").isdigit() else None
        found = service.list_executions(q.get("function") or None, None, statuses or None,
                                        _epoch_ms(q.get("after")), _epoch_ms(q.get("before")), True,
                                        marker, PAGE_SIZE, q.get("q") or None)
        executions = []
        now = engine.clock.now_ms()
        for item in found["DurableExecutions"]:
            end = item.get("EndTimestamp")
            executions.append({**item, "Function": item["FunctionArn"].rsplit(":", 2)[-2],
                               "Duration": (end or now) - item["StartTimestamp"]})
        query = [(k, v) for k, v in q.multi_items() if k not in ("page", "done", "error")]
        next_page = urlencode([*query, ("page", found["NextMarker"])]) if found.get("NextMarker") else None
        previous = None
        if marker:
            previous = urlencode([*query, ("page", str(max(0, int(marker) - PAGE_SIZE)))])
        return {"executions": executions, "statuses": statuses, "next_page": next_page, "previous_page": previous,
                "filters": {k: q.get(k) or "" for k in ("function", "q", "after", "before")},
                "functions": service.function_names()}

    async def executions(request: Request, token: str) -> Response:
        return render("executions.html", request, token, **listing(request))

    async def execution_rows(request: Request, token: str) -> Response:
        return render("_execution_rows.html", request, token, **listing(request))

    async def execution(request: Request, token: str) -> Response:
        arn = request.path_params["arn"]
        try:
            summary = service.get_execution(arn)
        except ServiceError as exc:
            return render("missing.html", request, token, status=exc.status, message=str(exc))
        engine.logs.flush()
        operations = service.all_operations(arn)
        events = engine.get_history(arn)
        now = engine.clock.now_ms()
        roots = _reading.tree(operations)
        return render("execution.html", request, token, execution=summary, roots=roots, redrivable=REDRIVABLE,
                      graph=_reading.graph(operations), timeline=_reading.timeline(operations, events, now),
                      events=events, now=now, problem=service.last_invocation_error(arn),
                      version=_version(summary, len(events)), payloads=_reading.payloads,
                      logs=service.get_logs(arn, limit=LOG_LIMIT), LOG_LIMIT=LOG_LIMIT,
                      events_json=lambda e: json.dumps(e, indent=2, ensure_ascii=False))

    async def version(request: Request, token: str) -> Response:
        arn = request.query_params.get("arn", "")
        try:
            summary = service.get_execution(arn)
        except ServiceError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        return PlainTextResponse(_version(summary, len(engine.get_history(arn, include_data=False))))

    def inbox_values() -> dict[str, Any]:
        waiting = []
        operations_of: dict[str, list[Operation]] = {}
        for callback in service.open_callbacks():
            if callback.arn not in operations_of:
                operations_of[callback.arn] = service.all_operations(callback.arn)
            request = _reading.approval_request(callback.operation, operations_of[callback.arn])
            waiting.append({"callback": callback, "approval": request,
                            "label": _reading.callback_label(callback.operation, operations_of[callback.arn]),
                            "args_json": json.dumps(request.args, indent=2, ensure_ascii=False)
                            if request and request.args is not None else ""})
        return {"waiting": waiting, "now": engine.clock.now_ms()}

    async def inbox(request: Request, token: str) -> Response:
        return render("inbox.html", request, token, **inbox_values())

    async def inbox_rows(request: Request, token: str) -> Response:
        return render("_inbox_items.html", request, token, **inbox_values())

    async def payload(request: Request, token: str) -> Response:
        q = request.query_params
        try:
            operations = service.all_operations(q.get("arn", ""))
        except ServiceError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        if q.get("op") == "execution":
            summary = service.get_execution(q.get("arn", ""))
            text = summary.get("Result" if q.get("field") == "Result" else "InputPayload")
            return PlainTextResponse(_reading.pretty(text))
        for op in operations:
            if op.Id == q.get("op"):
                for label, value in _reading.payloads(op):
                    if label == q.get("field"):
                        return PlainTextResponse(value)
        return PlainTextResponse("no such operation or field", status_code=404)

    async def stop(request: Request, form: Any) -> str:
        arn = str(form.get("arn") or "")
        service.stop_execution(arn, ErrorObject(ErrorType="Stopped", ErrorMessage="stopped from the dashboard"))
        return "the execution is stopped"

    async def redrive(request: Request, form: Any) -> str:
        new_arn = engine.redrive(str(form.get("arn") or ""))
        raise _Redirect("/executions/" + quote(new_arn) + "?" + urlencode(
            {"done": "a redrive of the execution: it starts with what the original completed before its failure"}))

    async def answer(request: Request, form: Any) -> str:
        callback_id = str(form.get("callback_id") or "")
        outcome = form.get("outcome")
        if outcome == "failure":
            service.send_callback_failure(callback_id, ErrorObject(
                ErrorType=str(form.get("error_type") or "") or None,
                ErrorMessage=str(form.get("error_message") or "") or None))
            return "the callback is answered with a failure"
        payload = str(form.get("payload") or "")
        service.send_callback_success(callback_id, payload or None)
        return "the callback is answered"

    async def approve(request: Request, form: Any) -> str:
        callback_id = str(form.get("callback_id") or "")
        decision = str(form.get("decision") or "")
        answer: dict[str, Any] = {"decision": decision}
        if decision == "edit":
            try:
                answer["args"] = json.loads(str(form.get("args") or ""))
            except ValueError as exc:
                raise ValueError(f"the edited arguments are not JSON ({exc}): nothing was sent") from None
            if not isinstance(answer["args"], dict):
                raise ValueError("the edited arguments must be a JSON object of the tool's arguments: nothing was sent")
        elif decision not in ("approve", "reject"):
            raise ValueError(f"unknown decision {decision!r}: nothing was sent")
        if message := str(form.get("message") or "").strip():
            answer["message"] = message
        service.send_callback_success(callback_id, json.dumps(answer))
        return {"approve": "approved", "reject": "rejected", "edit": "approved with edited arguments"}[decision]

    static = StaticFiles(directory=HERE / "static", follow_symlink=True)  # an editable install links its files

    async def assets(scope: Any, receive: Any, send: Any) -> None:
        if (refused := refused_login(Request(scope), access_key)) is not None:
            await refused(scope, receive, send)
            return
        response_started = False

        async def with_headers(message: Any) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start" and not response_started:
                response_started = True
                message.setdefault("headers", []).append((b"x-content-type-options", b"nosniff"))
            await send(message)
        await static(scope, receive, with_headers)

    return [
        Route("/", page(executions), methods=["GET"]),
        Route("/executions/{arn:path}", page(execution), methods=["GET"]),
        Route("/inbox", page(inbox), methods=["GET"]),
        Route("/ui/rows", page(execution_rows), methods=["GET"]),
        Route("/ui/inbox-items", page(inbox_rows), methods=["GET"]),
        Route("/ui/version", page(version), methods=["GET"]),
        Route("/ui/payload", page(payload), methods=["GET"]),
        Route("/ui/stop", action(stop), methods=["POST"]),
        Route("/ui/answer", action(answer), methods=["POST"]),
        Route("/ui/redrive", action(redrive), methods=["POST"]),
        Route("/ui/approve", action(approve), methods=["POST"]),
        Mount("/ui/static", app=assets),
    ]


class _Redirect(Exception):
    """An action whose result is another page (a redrive: the new execution's)."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def _version(summary: dict[str, Any], event_count: int) -> str:
    """Changes whenever the execution does: what a page polls to know when to reload."""
    return f"{summary['Status']}:{event_count}"
