"""Host URL normalisation and SSRF refusals (opstrail.netguard)."""

from __future__ import annotations

import pytest

from opstrail.errors import TracingConfigError, ValidationError
from opstrail.netguard import HostRules, check_host_url, check_request_target, checked_addresses


def _resolver(table: dict[str, list[str]]):
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"{host}: Name or service not known")
        return table[host]

    return resolve


PUBLIC = _resolver(
    {
        "cloud.langfuse.com": ["18.197.0.1"],
        "langfuse.internal": ["10.0.0.5"],
        "split.example": ["18.197.0.2", "192.168.1.9"],
        "meta.example": ["169.254.169.254"],
    }
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://cloud.langfuse.com", "https://cloud.langfuse.com"),
        ("  HTTPS://Cloud.Langfuse.com/ ", "https://cloud.langfuse.com"),
        ("https://cloud.langfuse.com/langfuse/", "https://cloud.langfuse.com/langfuse"),
        ("https://cloud.langfuse.com:8443/a/b//", "https://cloud.langfuse.com:8443/a/b"),
    ],
)
def test_check_host_url_normalises_when_public(given: str, expected: str) -> None:
    """Scheme and host are lower-cased, trailing slashes removed, the sub-path kept."""
    assert (
        check_host_url(given, refuse_private=True, loopback_only=False, resolver=PUBLIC) == expected
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://169.254.10.1/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://meta.example/",
    ],
)
def test_check_host_url_refuses_metadata_and_link_local_when_private_allowed(url: str) -> None:
    """Cloud metadata and link-local addresses are refused even when private hosts are allowed."""
    with pytest.raises(TracingConfigError) as caught:
        check_host_url(url, refuse_private=False, loopback_only=False, resolver=PUBLIC)
    assert caught.value.code == "invalid_host"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3",
        "http://192.168.0.10:3000",
        "http://[fd12::1]/",
        "http://127.0.0.1:3000",
        "http://100.64.0.1",
        "http://langfuse.internal",
        "http://split.example",
    ],
)
def test_check_host_url_refuses_private_networks_when_refuse_private(url: str) -> None:
    """With refuse_private, private, loopback and CGNAT addresses are refused, also when only
    one of a name's addresses is private."""
    with pytest.raises(TracingConfigError) as caught:
        check_host_url(url, refuse_private=True, loopback_only=False, resolver=PUBLIC)
    assert caught.value.code == "invalid_host"
    assert "private network" in caught.value.message


def test_check_host_url_allows_private_networks_when_not_refused() -> None:
    """A self-hosted Langfuse on the LAN is fine by default."""
    assert (
        check_host_url(
            "http://langfuse.internal:3000/",
            refuse_private=False,
            loopback_only=False,
            resolver=PUBLIC,
        )
        == "http://langfuse.internal:3000"
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://cloud.langfuse.com",
        "file:///etc/passwd",
        "gopher://x",
        "cloud.langfuse.com",
        "",
        "   ",
        "https://",
        "http://user:pw@cloud.langfuse.com",
        "https://cloud.langfuse.com/?a=1",
        "https://cloud.langfuse.com/#x",
        "http://cloud.langfuse.com:99999",
        "http://a b.com",
    ],
)
def test_check_host_url_refuses_malformed_urls_when_given(url: str) -> None:
    """Non-http schemes, missing hosts, credentials, queries and bad ports are invalid_host."""
    with pytest.raises(TracingConfigError) as caught:
        check_host_url(url, refuse_private=False, loopback_only=False, resolver=PUBLIC)
    assert caught.value.code == "invalid_host"


def test_check_host_url_reports_unreachable_when_name_does_not_resolve() -> None:
    """A DNS failure is host_unreachable, not invalid_host."""
    with pytest.raises(TracingConfigError) as caught:
        check_host_url(
            "https://nowhere.example", refuse_private=False, loopback_only=False, resolver=PUBLIC
        )
    assert caught.value.code == "host_unreachable"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3000/", "http://[::1]:3000", "http://localhost:9"]
)
def test_check_host_url_allows_loopback_when_loopback_only(url: str) -> None:
    """In loopback-only mode (tests) loopback hosts pass."""
    assert check_host_url(url, refuse_private=True, loopback_only=True).startswith("http://")


def test_check_host_url_never_resolves_names_when_loopback_only() -> None:
    """Loopback-only refuses other names without asking any resolver (no traffic leaves)."""

    def resolver(host: str) -> list[str]:
        raise AssertionError("resolver must not be called")

    for url in ("https://cloud.langfuse.com", "http://10.0.0.1", "http://8.8.8.8"):
        with pytest.raises(TracingConfigError) as caught:
            check_host_url(url, refuse_private=False, loopback_only=True, resolver=resolver)
        assert caught.value.code == "invalid_host"


def test_check_request_target_keeps_query_and_raises_validation_error_when_refused() -> None:
    """The http-request node's URL keeps its query; refusals are ValidationError."""
    url = "http://127.0.0.1:8080/api/items/?q=1"
    assert check_request_target(url, refuse_private=False, loopback_only=True) == url
    with pytest.raises(ValidationError) as caught:
        check_request_target("http://169.254.169.254/", refuse_private=False, loopback_only=False)
    assert not isinstance(caught.value, TracingConfigError)
    assert caught.value.code == "invalid_url"


def test_checked_addresses_keeps_resolver_order_without_duplicates_when_all_pass() -> None:
    """Connect-time check: every address passes, in the resolver's order, each once."""
    resolver = _resolver({"multi.example": ["10.0.0.7", "::ffff:10.0.0.7", "10.0.0.5"]})
    addresses = checked_addresses("Multi.Example.", HostRules(resolver=resolver))
    assert [str(a) for a in addresses] == ["10.0.0.7", "10.0.0.5"]


@pytest.mark.parametrize(
    ("host", "rules", "fragment"),
    [
        ("meta.example", HostRules(resolver=PUBLIC), "metadata"),
        ("169.254.10.1", HostRules(resolver=PUBLIC), "link-local"),
        ("split.example", HostRules(refuse_private=True, resolver=PUBLIC), "private network"),
        ("[::1]", HostRules(refuse_private=True), "private network"),
        ("10.1.2.3", HostRules(loopback_only=True), "Only loopback"),
        ("metadata.google.internal", HostRules(), "metadata"),
    ],
)
def test_checked_addresses_refuses_like_check_host_url_when_an_address_is_forbidden(
    host: str, rules: HostRules, fragment: str
) -> None:
    """The connect-time check applies the save-time rules: invalid_host naming the rule."""
    with pytest.raises(TracingConfigError) as caught:
        checked_addresses(host, rules)
    assert caught.value.code == "invalid_host"
    assert fragment in caught.value.message


def test_checked_addresses_reports_unreachable_when_name_does_not_resolve() -> None:
    """A DNS failure at connect time is host_unreachable, as at save time."""
    with pytest.raises(TracingConfigError) as caught:
        checked_addresses("nowhere.example", HostRules(resolver=PUBLIC))
    assert caught.value.code == "host_unreachable"


def test_checked_addresses_maps_localhost_to_127_0_0_1_without_resolving_when_loopback_only() -> None:
    """Loopback-only never asks a resolver at connect time either; localhost is 127.0.0.1."""

    def resolver(host: str) -> list[str]:
        raise AssertionError("resolver must not be called")

    rules = HostRules(loopback_only=True, resolver=resolver)
    assert [str(a) for a in checked_addresses("localhost", rules)] == ["127.0.0.1"]
    with pytest.raises(TracingConfigError):
        checked_addresses("cloud.langfuse.com", rules)
