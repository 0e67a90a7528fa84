"""http-request: one HTTP call through httpx, every target (and redirect) checked by the
SSRF guard first, with connect/read/write timeouts.

The guard runs twice: ``ctx.env.check_url`` before any I/O (a clear error for a refused URL),
and the transport of ``ctx.env.outbound_http`` on every new connection, which resolves the
name once, checks every address by the same rules and connects to a checked one, so a name
that resolves elsewhere after the first check (DNS rebinding) is refused too."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urljoin

import httpx

from opstrail.errors import OpstrailError
from opstrail.runtime.nodes.base import NodeContext, NodeResult
from opstrail.runtime.workflow.templates import render_references

METHODS: Final = frozenset({"get", "post", "put", "patch", "delete", "head"})
MAX_REDIRECTS: Final = 5
MAX_BODY_BYTES: Final = 10 * 1024 * 1024


def _pairs(text: str, ctx: NodeContext) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for line in render_references(text or "", ctx.pool).splitlines():
        if not line.strip():
            continue
        key, _, value = line.partition(":")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _timeout(ctx: NodeContext) -> httpx.Timeout:
    raw = ctx.data.get("timeout") or {}
    default = ctx.env.http_timeout

    def pick(key: str) -> float:
        value = raw.get(key) if isinstance(raw, Mapping) else None
        return float(value) if isinstance(value, int | float) and value > 0 else default

    return httpx.Timeout(connect=pick("max_connect_timeout"), read=pick("max_read_timeout"),
                         write=pick("max_write_timeout"), pool=default)


def _body(ctx: NodeContext, headers: dict[str, str]) -> dict[str, Any]:
    body = ctx.data.get("body") or {}
    kind = str(body.get("type") or "none")
    data = body.get("data")
    if kind == "none":
        return {}
    if isinstance(data, str):  # older exports
        text = render_references(data, ctx.pool)
        items: list[Mapping[str, Any]] = []
    else:
        items = [d for d in data or [] if isinstance(d, Mapping)]
        text = render_references(str(items[0].get("value") or ""), ctx.pool) if items else ""
    if kind == "json":
        headers.setdefault("Content-Type", "application/json")
        return {"content": text.encode()}
    if kind == "raw-text":
        headers.setdefault("Content-Type", "text/plain")
        return {"content": text.encode()}
    if kind in ("x-www-form-urlencoded", "form-data"):
        fields = {}
        if items:
            for item in items:
                key = render_references(str(item.get("key") or ""), ctx.pool)
                if key:
                    fields[key] = render_references(str(item.get("value") or ""), ctx.pool)
        else:
            fields = dict(_pairs(text, ctx))
        if kind == "form-data":
            return {"files": {k: (None, v) for k, v in fields.items()}}
        return {"data": fields}
    raise ctx.fail(f"body type {kind!r} is not supported")


class _Exchange:
    """One request and the redirects it leads to; ``current`` is the URL last requested
    (the one a connection refusal is about)."""

    def __init__(self, target: str) -> None:
        self.current = target

    def send(self, ctx: NodeContext, client: httpx.Client, method: str,
             headers: dict[str, str], **request: Any) -> tuple[httpx.Response, bytes]:
        """Send, then follow at most ``MAX_REDIRECTS`` redirects, each target checked by
        ``ctx.env.check_url`` first; returns the last response and its body (capped)."""
        response = client.request(method, self.current, headers=headers, **request)
        for _ in range(MAX_REDIRECTS):
            if not response.is_redirect or "location" not in response.headers:
                break
            next_url = urljoin(str(response.url), response.headers["location"])
            try:
                next_url = ctx.env.check_url(next_url)
            except OpstrailError as exc:
                raise ctx.fail(f"redirect to {next_url} refused: {exc}",
                               code="ssrf_refused") from exc
            redirect_method = "GET" if response.status_code in (301, 302, 303) else method
            self.current = next_url
            response = client.request(redirect_method, next_url, headers=headers)
        return response, response.content[:MAX_BODY_BYTES]


def handle(ctx: NodeContext) -> NodeResult:
    """Send the request; outputs ``status_code``, ``body``, ``headers``, ``files``."""
    method = str(ctx.data.get("method") or "get").lower()
    if method not in METHODS:
        raise ctx.fail(f"HTTP method {method!r} is not supported")
    url = render_references(str(ctx.data.get("url") or ""), ctx.pool).strip()
    if not url:
        raise ctx.fail("the request has no URL")
    headers = dict(_pairs(str(ctx.data.get("headers") or ""), ctx))
    params = _pairs(str(ctx.data.get("params") or ""), ctx)
    auth = ctx.data.get("authorization") or {}
    if auth.get("type") == "api-key":
        config = auth.get("config") or {}
        key = render_references(str(config.get("api_key") or ""), ctx.pool)
        kind = config.get("type")
        if kind == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif kind == "basic":
            encoded = key if ":" not in key else base64.b64encode(key.encode()).decode()
            headers["Authorization"] = f"Basic {encoded}"
        else:
            headers[str(config.get("header") or "Authorization")] = key
    content = _body(ctx, headers)
    inputs = {"method": method, "url": url, "headers": {k: ("***" if k.lower() ==
                                                            "authorization" else v)
                                                        for k, v in headers.items()},
              "params": dict(params)}
    try:
        target = ctx.env.check_url(url)
    except OpstrailError as exc:
        raise ctx.fail(f"request to {url} refused: {exc}", code="ssrf_refused") from exc
    outbound = ctx.env.outbound_http
    if outbound is None:
        # Sending through a stock transport would skip the connect-time address check.
        raise ctx.fail("http-request nodes cannot run here: no guarded HTTP transport is "
                       "configured", code="ssrf_refused")
    verify = bool(ctx.data.get("ssl_verify", True))
    exchange = _Exchange(target)
    try:
        with httpx.Client(timeout=_timeout(ctx), follow_redirects=False, trust_env=False,
                          transport=outbound.transport(verify)) as client:
            query: list[tuple[str, str | int | float | bool | None]] = list(params)
            response, body_bytes = exchange.send(ctx, client, method.upper(), headers,
                                                 params=query or None, **content)
    except httpx.TimeoutException as exc:
        raise ctx.fail(f"the request to {url} timed out ({type(exc).__name__})",
                       code="http_timeout") from exc
    except httpx.HTTPError as exc:
        reason = outbound.refusal(exc)
        if reason is not None:
            raise ctx.fail(f"request to {exchange.current} refused when connecting: {reason}",
                           code="ssrf_refused") from exc
        raise ctx.fail(f"the request to {url} failed: {exc}", code="http_error") from exc
    body = body_bytes.decode(response.encoding or "utf-8", errors="replace")
    outputs = {
        "status_code": response.status_code,
        "body": body,
        "headers": dict(response.headers),
        "files": [],
    }
    return NodeResult(outputs=outputs, inputs=inputs,
                      process_data={"request": f"{method.upper()} {url}",
                                    "status_code": response.status_code})
