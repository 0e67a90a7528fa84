"""Guards for outbound URLs that a user supplies: tracing hosts and http-request targets.

A tracing host is fetched by the server, so a user who can save one can make the server talk
to whatever it names (SSRF). This module normalises such URLs and refuses the dangerous ones:

- schemes other than ``http`` and ``https``;
- link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata endpoints
  (169.254.169.254, fd00:ec2::254, metadata.google.internal), always;
- unspecified, multicast and reserved addresses, always;
- private networks (RFC 1918, fc00::/7, CGNAT 100.64.0.0/10) and loopback, when
  ``refuse_private`` is set (a multi-tenant deployment);
- anything but loopback (127.0.0.0/8, ::1), when ``loopback_only`` is set (tests: no traffic
  may leave the machine, so names other than ``localhost`` are not even resolved).

Every address a name resolves to is checked, so a name with one public and one private
address is refused. ``check_host_url`` checks when a host is saved or validated;
``checked_addresses`` applies the same rules (``HostRules``) when a connection is opened: the
exporters' transport (``opstrail.exporters.transport``) resolves the name once per new
connection, checks every address, and connects to a checked address only, so a name that later
resolves elsewhere (DNS rebinding) is refused at send time too. The workflow http-request node
connects through the same transport (built by the services layer, passed in its run
environment), so its requests and redirects are checked at connect time as well.

Stdlib only; imports nothing from opstrail but ``errors``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from opstrail.errors import OpstrailError, TracingConfigError, ValidationError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Resolves a host name to its addresses (as text). Tests may pass their own.
Resolver = Callable[[str], Sequence[str]]

METADATA_HOST_NAMES: Final = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)
METADATA_ADDRESSES: Final = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud metadata
    }
)
# Private ranges that ``ipaddress.is_private`` does not cover.
SHARED_NETWORKS: Final = (ipaddress.ip_network("100.64.0.0/10"),)
ALLOWED_SCHEMES: Final = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class HostRules:
    """Which addresses an outbound connection may reach: the deployment's settings
    (``OPSTRAIL_REFUSE_PRIVATE_HOSTS``, ``OPSTRAIL_LOOPBACK_ONLY_HOSTS``) and the resolver.

    The defaults refuse only what is always refused (metadata, link-local, unroutable).
    """

    refuse_private: bool = False
    loopback_only: bool = False
    # Tests pass their own; None means the system resolver.
    resolver: Resolver | None = field(default=None, compare=False)


def system_resolver(host: str) -> list[str]:
    """Every address ``host`` resolves to, via the system resolver, in its order of preference.

    Raises:
        OSError: the name does not resolve.
    """
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def check_host_url(
    url: str,
    *,
    refuse_private: bool,
    loopback_only: bool,
    resolver: Resolver | None = None,
) -> str:
    """Normalise a tracing host URL and refuse it when it points somewhere forbidden.

    The result is ``scheme://host[:port][/sub/path]``: scheme and host lower-cased, the
    sub-path kept (a Langfuse behind a proxy prefix), trailing slashes removed, so callers can
    append ``/api/public/...``.

    Args:
        url: what the user typed.
        refuse_private: also refuse private networks and loopback.
        loopback_only: allow only loopback addresses (tests); wins over ``refuse_private``.
        resolver: name resolution, the system resolver by default.

    Returns:
        The normalised URL.

    Raises:
        TracingConfigError: code ``invalid_host`` for a malformed or refused URL,
            ``host_unreachable`` when the name does not resolve.
    """
    try:
        return _check(
            url,
            refuse_private=refuse_private,
            loopback_only=loopback_only,
            resolver=resolver,
            keep_query=False,
        )
    except _Refused as exc:
        raise TracingConfigError(exc.message, code=exc.code) from None


def check_request_target(
    url: str,
    *,
    refuse_private: bool,
    loopback_only: bool,
    resolver: Resolver | None = None,
) -> str:
    """Check the URL of a workflow http-request node by the same rules as a tracing host.

    Unlike a host, the URL keeps its path, query and trailing slash as given (only
    surrounding whitespace is removed).

    Raises:
        ValidationError: code ``invalid_url`` for a malformed or refused URL,
            ``host_unreachable`` when the name does not resolve.
    """
    try:
        return _check(
            url,
            refuse_private=refuse_private,
            loopback_only=loopback_only,
            resolver=resolver,
            keep_query=True,
        )
    except _Refused as exc:
        code = "host_unreachable" if exc.code == "host_unreachable" else "invalid_url"
        raise ValidationError(exc.message, code=code) from None


def checked_addresses(host: str, rules: HostRules) -> tuple[IpAddress, ...]:
    """Resolve ``host`` once and check every address by ``rules``, as ``check_host_url`` does.

    Connect only to one of these addresses: resolving the name again could give another
    answer. Under ``loopback_only`` only ``localhost`` names and loopback literals pass, and
    ``localhost`` means 127.0.0.1 without asking any resolver (as when the host was saved).

    Args:
        host: a host name or IP literal (brackets allowed), as in a URL.
        rules: the deployment's rules.

    Returns:
        The addresses, in the resolver's order, without duplicates; never empty.

    Raises:
        TracingConfigError: code ``invalid_host`` when the name or any of its addresses is
            refused (the message names the address and the rule), ``host_unreachable`` when
            the name does not resolve.
    """
    name = host.strip().lower().rstrip(".")
    try:
        addresses = _check_host(
            name,
            refuse_private=rules.refuse_private,
            loopback_only=rules.loopback_only,
            resolver=rules.resolver,
        )
    except _Refused as exc:
        raise TracingConfigError(exc.message, code=exc.code) from None
    return tuple(dict.fromkeys(addresses))


class _Refused(OpstrailError):
    """Internal: a refusal, turned into the caller's error type at the boundary."""


def _check(
    url: str,
    *,
    refuse_private: bool,
    loopback_only: bool,
    resolver: Resolver | None,
    keep_query: bool,
) -> str:
    if not isinstance(url, str) or not url.strip():
        raise _Refused(
            "The URL is empty; enter e.g. https://cloud.langfuse.com.", code="invalid_host"
        )
    text = url.strip()
    if any(ch.isspace() or ord(ch) < 0x20 for ch in text):
        raise _Refused("The URL contains spaces or control characters.", code="invalid_host")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _Refused(f"The URL is malformed: {exc}.", code="invalid_host") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _Refused(
            "The URL must start with http:// or https:// "
            f"(got {scheme + '://' if scheme else 'no scheme'}).",
            code="invalid_host",
        )
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise _Refused("The URL has no host name.", code="invalid_host")
    if not keep_query:
        if parts.username is not None or parts.password is not None:
            raise _Refused(
                "The host URL must not contain a user name or password; keys go in their "
                "own fields.",
                code="invalid_host",
            )
        if parts.query or parts.fragment:
            raise _Refused(
                "The host URL must not contain a query (?...) or fragment (#...).",
                code="invalid_host",
            )
    _check_host(host, refuse_private=refuse_private, loopback_only=loopback_only, resolver=resolver)
    if keep_query:
        return text
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}"


def _check_host(
    host: str, *, refuse_private: bool, loopback_only: bool, resolver: Resolver | None
) -> list[IpAddress]:
    if host in METADATA_HOST_NAMES or host.endswith(".metadata.google.internal"):
        raise _Refused(f"{host} is a cloud metadata endpoint and is refused.", code="invalid_host")
    literal = _parse_ip(host)
    if literal is not None:
        addresses = [literal]
    elif loopback_only:
        # Tests: never ask a DNS server (that traffic would leave loopback).
        if host != "localhost" and not host.endswith(".localhost"):
            raise _Refused(
                f"Only loopback hosts are allowed here (got {host}).", code="invalid_host"
            )
        addresses = [ipaddress.ip_address("127.0.0.1")]
    else:
        try:
            resolved = (resolver or system_resolver)(host)
        except (OSError, UnicodeError) as exc:
            raise _Refused(
                f"The host name {host} does not resolve ({exc}). Check the spelling, or use an "
                "address this server can reach (not localhost from inside a container).",
                code="host_unreachable",
            ) from None
        addresses = [ip for ip in (_parse_ip(a) for a in resolved) if ip is not None]
        if not addresses:
            raise _Refused(f"The host name {host} does not resolve.", code="host_unreachable")
    for address in addresses:
        _check_address(host, address, refuse_private=refuse_private, loopback_only=loopback_only)
    return addresses


def _parse_ip(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _check_address(
    host: str, address: IpAddress, *, refuse_private: bool, loopback_only: bool
) -> None:
    where = host if host == str(address) else f"{host} ({address})"
    if address in METADATA_ADDRESSES:
        raise _Refused(f"{where} is a cloud metadata endpoint and is refused.", code="invalid_host")
    if address.is_link_local:
        raise _Refused(f"{where} is a link-local address and is refused.", code="invalid_host")
    if loopback_only:
        if not address.is_loopback:
            raise _Refused(
                f"Only loopback hosts are allowed here (got {where}).", code="invalid_host"
            )
        return
    # ::1 counts as "reserved" to ipaddress, so loopback is judged before that test.
    if (
        address.is_unspecified
        or address.is_multicast
        or (address.is_reserved and not address.is_loopback)
    ):
        raise _Refused(f"{where} is not a routable address.", code="invalid_host")
    if refuse_private and (
        address.is_private or address.is_loopback or any(address in net for net in SHARED_NETWORKS)
    ):
        raise _Refused(
            f"{where} is on a private network, which this server refuses "
            "(OPSTRAIL_REFUSE_PRIVATE_HOSTS).",
            code="invalid_host",
        )
