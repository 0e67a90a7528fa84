"""Property-based run of the console tracing API's OpenAPI (schemathesis): no input, valid or
not, makes the server answer 5xx.

Only /console/api tracing paths are exercised. Settings are loopback-only, so a generated host
can at most reach a closed port on 127.0.0.1: no traffic leaves the machine.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from config.factories import CONSOLE_HEADERS, GOOD_KEYS, add_app, langfuse_body
from opstrail.api.app import create_app
from opstrail.collector.testing import running_collector
from opstrail.settings import Settings

TRACING_PATHS = r"^/console/api/apps/\{app_id\}/trace"
EXAMPLES_PER_OPERATION = 20


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_console_tracing_api_never_answers_5xx_when_fuzzed(
    settings: Settings, mode: GenerationMode
) -> None:
    """Generated requests, schema-valid or not, on the real app id or a generated one, never
    get a 5xx from any tracing route."""
    assert settings.loopback_only_hosts
    app = create_app(settings.model_copy(update={"embedded_dispatcher": False}))
    with (
        running_collector(keys=[GOOD_KEYS]) as collector,
        TestClient(app, headers=CONSOLE_HEADERS) as client,
    ):
        with app.state.session_factory() as session:
            app_id = add_app(session, app.state.tenant_id)
        # A saved, enabled config, so PATCH, DELETE and GET reach their real work.
        saved = client.post(
            f"/console/api/apps/{app_id}/trace-config", json=langfuse_body(collector.url)
        )
        assert saved.status_code == 200, saved.text
        client.post(f"/console/api/apps/{app_id}/trace", json={"enabled": True})
        schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
            path_regex=TRACING_PATHS
        )
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 9
        for operation in operations:
            assert operation.path.startswith("/console/api/")

            @given(case=operation.as_strategy(generation_mode=mode), real_app=st.booleans())
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def run(case: schemathesis.Case, real_app: bool) -> None:
                if real_app and case.path_parameters is not None:
                    case.path_parameters["app_id"] = app_id
                response = case.call(headers=CONSOLE_HEADERS)
                case.validate_response(response, checks=[not_a_server_error])

            run()
