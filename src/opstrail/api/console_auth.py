"""Console API authentication: ``Authorization: Bearer <console token>``.

``ConsoleAccountDep`` gives a handler the default workspace and account. A missing or wrong
token raises ``AuthError`` (401 ``{"code": "unauthorized"}``). The token is checked against its
SHA-256 (``opstrail.config.console_token``); the expected digest is read once per app and kept
on ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from opstrail.config.console_token import ensure_console_token, expected_digest, token_matches
from opstrail.errors import AuthError, ConfigError
from opstrail.settings import Settings

# auto_error=False: our own AuthError gives the {"code","message"} answer, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="The console API token.")


@dataclass(frozen=True, slots=True)
class ConsoleAccount:
    """The authenticated console user: the default account of the default workspace."""

    account_id: str
    tenant_id: str


def _digest(request: Request) -> str:
    digest: str | None = getattr(request.app.state, "console_token_digest", None)
    if digest is None:
        settings: Settings = request.app.state.settings
        # Normally `opstrail serve` generated the token already; this covers other starts.
        ensure_console_token(settings)
        digest = expected_digest(settings)
        if digest is None:
            raise AuthError("No console token is configured.", code="unauthorized")
        request.app.state.console_token_digest = digest
    return digest


def get_console_account(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ConsoleAccount:
    """The console account for a request bearing the console token.

    Raises:
        AuthError: the header is missing, not ``Bearer``, or the token is wrong.
    """
    digest = _digest(request)  # first: a missing token is generated (and printed) at once
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise AuthError(
            "Send the console token as 'Authorization: Bearer <token>'.", code="unauthorized"
        )
    if not token_matches(credentials.credentials, digest):
        raise AuthError("The console token is wrong.", code="unauthorized")
    state = request.app.state
    tenant_id = getattr(state, "tenant_id", None)
    account_id = getattr(state, "account_id", None)
    if tenant_id is None or account_id is None:
        # Only when the app runs without its lifespan: a server fault, not the caller's.
        raise ConfigError("The server has not finished starting.", code="not_started")
    return ConsoleAccount(account_id=account_id, tenant_id=tenant_id)


ConsoleAccountDep = Annotated[ConsoleAccount, Depends(get_console_account)]
