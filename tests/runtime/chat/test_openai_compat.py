"""OpenAI-compatible models through the openai package, against a local stub server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakes.openai_stub import StubServer, running_openai_stub
from opstrail.errors import RuntimeFailure
from opstrail.runtime.models.base import ChatMessage, ModelRequest
from opstrail.runtime.models.calls import call_model
from opstrail.runtime.models.registry import ModelOptions, ModelRegistry


@pytest.fixture(name="stub")
def _stub() -> Iterator[StubServer]:
    with running_openai_stub() as server:
        yield server


def _request() -> ModelRequest:
    return ModelRequest(provider="langgenius/openai/openai", model="gpt-4o-mini",
                        messages=(ChatMessage(role="user", content="hi"),),
                        parameters={"temperature": 0.2})


def test_openai_stream_measures_ttft_and_reads_usage_from_final_chunk(stub: StubServer) -> None:
    """Streaming asks for usage, takes it from the final chunk and prices it in USD."""
    registry = ModelRegistry(ModelOptions(openai_base_url=stub.url, openai_api_key="sk-test"))
    resolved = registry.resolve("langgenius/openai/openai", "gpt-4o-mini")
    pieces: list[str] = []
    outcome = call_model(resolved, _request(), stream=True, on_delta=pieces.append)
    assert outcome.result is not None
    assert "".join(pieces) == stub.state.answer == outcome.result.text
    assert (outcome.record.prompt_tokens, outcome.record.completion_tokens) == (17, 11)
    assert outcome.record.time_to_first_token is not None and outcome.record.streaming
    assert outcome.record.price is not None and outcome.record.price > 0
    sent = stub.state.requests[-1]["body"]
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0.2
    assert stub.state.requests[-1]["authorization"] == "Bearer sk-test"
    registry.close()


def test_openai_blocking_call_returns_text_and_usage(stub: StubServer) -> None:
    """A blocking call gets the text and the response's usage."""
    registry = ModelRegistry(ModelOptions(openai_base_url=stub.url, openai_api_key="sk-test"))
    outcome = call_model(registry.resolve("openai", "gpt-4o-mini"), _request(), stream=False)
    assert outcome.result is not None and outcome.result.text == stub.state.answer
    assert outcome.record.total_tokens == 28 and not outcome.record.streaming
    registry.close()


def test_openai_provider_error_becomes_completion_request_error(stub: StubServer) -> None:
    """An HTTP 500 from the provider is recorded, not raised, as completion_request_error."""
    stub.state.fail_status = 500
    registry = ModelRegistry(ModelOptions(openai_base_url=stub.url, openai_api_key="sk-test"))
    outcome = call_model(registry.resolve("openai", "gpt-4o-mini"), _request(), stream=True)
    assert outcome.result is None and outcome.error is not None
    assert outcome.error.code == "completion_request_error"
    assert "500" in outcome.error.message and outcome.record.error == outcome.error.message
    registry.close()


def test_registry_falls_back_to_offline_and_says_so() -> None:
    """With fallback=offline an unconfigured provider runs offline, keeping the request."""
    resolved = ModelRegistry(ModelOptions(fallback="offline")).resolve("langgenius/deepseek/deepseek", "chat")
    assert (resolved.provider, resolved.model) == ("opstrail", "offline")
    assert resolved.requested_model == "chat" and resolved.is_fallback


def test_registry_refuses_unconfigured_provider_without_fallback() -> None:
    """No endpoint and no fallback: provider_not_initialize, naming the provider."""
    with pytest.raises(RuntimeFailure) as caught:
        ModelRegistry(ModelOptions()).resolve("azure_openai", "gpt-4o")
    assert caught.value.code == "provider_not_initialize"
    assert "azure_openai" in caught.value.message
