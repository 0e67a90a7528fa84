"""HTTP clients for tracing destinations that connect only to addresses netguard allows.

A tracing host is checked by ``netguard`` when it is saved, but a stock ``httpx`` client resolves
the name again for every new connection, so a name that later resolves to a metadata endpoint or
a private address (DNS rebinding) would be reached. Here the name is resolved once per new
connection, every address is checked by the same ``HostRules`` as at save time, and the socket is
opened to a checked address (an IP literal: nothing is resolved between check and connect). TLS
still runs against the URL's host name: httpcore passes the origin's name as SNI and for the
certificate check, whatever address ``connect_tcp`` used.

Cost: one resolver call (the one ``socket.create_connection`` made anyway) plus a few
``ipaddress`` tests per *new* connection; requests over a kept-alive connection cost nothing
extra.

Environment proxies: when ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` is set, a deployment
reaches Langfuse through that proxy, and the proxy resolves the name, where no check can
follow it. ``guarded_client`` then returns a plain client that uses the proxy (as the
exporters did before this module), and only the save-time check applies; without a proxy in
the environment every connection is checked.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterable
from typing import Final

import httpcore
import httpx

from opstrail.errors import TracingConfigError
from opstrail.netguard import HostRules, checked_addresses
from opstrail.settings import Settings

__all__ = [
    "DEFAULT_LIMITS",
    "DestinationRefused",
    "GuardedBackend",
    "GuardedTransport",
    "guarded_client",
    "rules_from_settings",
]

# httpx's own defaults (httpx.Client uses the same).
DEFAULT_LIMITS: Final = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class AddressRefused(httpcore.ConnectError):
    """Raised by ``GuardedBackend`` when netguard refuses the host or one of its addresses.

    An ``httpcore.ConnectError``, so any httpx caller sees at least a connection error;
    ``GuardedTransport`` turns it into ``DestinationRefused``.
    """

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host = host
        self.reason = reason


class DestinationRefused(httpx.ConnectError):
    """A connection was refused by netguard before any socket was opened.

    A subclass of ``httpx.ConnectError``, so code that handles connection errors still does;
    catch this first to say why. ``host`` is the URL's host, ``reason`` netguard's sentence
    (it names the refused address and the rule).
    """

    def __init__(self, host: str, reason: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(
            f"connection to {host} refused: {reason} Nothing was sent. Addresses are checked "
            "on every new connection, not only when the host is saved: if it passed then, the "
            "name now resolves elsewhere (DNS change or rebinding); fix the DNS record or the "
            "tracing host.",
            request=request,
        )
        self.host = host
        self.reason = reason


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that checks the address it connects to.

    Args:
        rules: what netguard allows (the deployment's settings and resolver).
        inner: opens the sockets; ``httpcore.SyncBackend`` by default. It only ever gets IP
            literals, so it resolves nothing.
    """

    def __init__(self, rules: HostRules, inner: httpcore.NetworkBackend | None = None) -> None:
        self._rules = rules
        self._inner = inner if inner is not None else httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve ``host`` once, refuse it unless every address passes, then connect to the
        first address that answers (as ``socket.create_connection`` tries them in order).

        Raises:
            AddressRefused: netguard refused the host or one of its addresses.
            httpcore.ConnectError: the name does not resolve, or no address answered.
            httpcore.ConnectTimeout: the last address tried timed out.
        """
        try:
            addresses = checked_addresses(host, self._rules)
        except TracingConfigError as exc:
            if exc.code == "host_unreachable":
                raise httpcore.ConnectError(exc.message) from None
            raise AddressRefused(host, exc.message) from None
        options = list(socket_options) if socket_options is not None else None
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # checked_addresses never returns an empty tuple
        raise failure

    def sleep(self, seconds: float) -> None:
        """Wait between httpcore's connection retries."""
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool connects through ``GuardedBackend``.

    Keeps httpx's pool behaviour (limits, keep-alive, HTTP/1.1, timeouts per request). No
    proxy: see the module docstring.

    Args:
        rules: what netguard allows.
        verify: an ``ssl.SSLContext``, ``True`` (system or ``SSL_CERT_FILE`` trust, as httpx),
            or ``False``.
        limits: pool limits.
        inner: the socket-opening backend under the guard (tests may record connects).
    """

    def __init__(
        self,
        rules: HostRules,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=context, limits=limits)
        # httpx has no parameter for the network backend: replace the pool it built (no
        # connection is open yet) with one built the same way plus the guarded backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(rules, inner),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; a netguard refusal comes out as ``DestinationRefused``."""
        try:
            return super().handle_request(request)
        except httpx.ConnectError as exc:
            refused = exc.__cause__
            if isinstance(refused, AddressRefused):
                raise DestinationRefused(
                    request.url.host, refused.reason, request=request
                ) from refused
            raise


def guarded_client(
    rules: HostRules,
    *,
    timeout: httpx.Timeout | float,
    verify: ssl.SSLContext | bool = True,
    follow_redirects: bool = False,
) -> httpx.Client:
    """A new ``httpx.Client`` for tracing destinations over a ``GuardedTransport``.

    Every new connection, redirects included, is checked by ``rules``, unless the
    environment names a proxy (see the module docstring).
    """
    if _environment_proxy():
        return httpx.Client(timeout=timeout, follow_redirects=follow_redirects, verify=verify)
    return httpx.Client(
        timeout=timeout,
        follow_redirects=follow_redirects,
        transport=GuardedTransport(rules, verify=verify),
    )


def _environment_proxy() -> bool:
    """Whether the process environment routes HTTP(S) through a proxy."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def rules_from_settings(settings: Settings) -> HostRules:
    """The deployment's ``HostRules`` (``refuse_private_hosts``, ``loopback_only_hosts``)."""
    return HostRules(
        refuse_private=settings.refuse_private_hosts,
        loopback_only=settings.loopback_only_hosts,
    )
