"""Service API authentication: ``Authorization: Bearer app-...`` -> the app.

An unknown, malformed or missing key is 401 (``AuthError``). Only the key's SHA-256 is stored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from opstrail.errors import AuthError
from opstrail.services.apps import app_for_token
from opstrail.storage.tables.apps import App

_bearer = HTTPBearer(auto_error=False, description="The app's service API key (app-...).")


def get_app_for_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> App:
    """The app whose key the request bears.

    Raises:
        AuthError: no bearer key, or a key that matches no app.
    """
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise AuthError(
            "Authorization header must be 'Bearer app-...' with the app's API key.",
            code="unauthorized",
        )
    with request.app.state.session_factory() as session:
        app = app_for_token(session, credentials.credentials)
        if app is not None:
            session.expunge(app)
    if app is None:
        raise AuthError("Access token is invalid", code="unauthorized")
    return app


AppTokenDep = Annotated[App, Depends(get_app_for_token)]
