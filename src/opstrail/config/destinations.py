"""Where an app's traces go, decrypted only at send time.

``ConfigDestinationResolver`` implements ``opstrail.delivery.ports.DestinationResolver`` (by
structure): the dispatcher asks it for an app's destination right before sending, so a
configuration change takes effect on the next batch and the decrypted keys live only as long
as that batch.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from opstrail.config.crypto import Keyring
from opstrail.config.providers import provider_named
from opstrail.config.tracing_config import (
    load_provider_config,
    load_switch,
    open_values,
    stored_project,
)
from opstrail.exporters.base import Destination
from opstrail.settings import Settings


class ConfigDestinationResolver:
    """Resolves an app id to its enabled provider's ``Destination``.

    Args:
        settings: the deployment settings (for the secret keys).
        keyring: the keyring to decrypt with; built from ``settings`` when omitted.
    """

    def __init__(self, settings: Settings, *, keyring: Keyring | None = None) -> None:
        self._keyring = keyring or Keyring.from_settings(settings)

    def resolve(self, session: Session, app_id: str) -> Destination | None:
        """The app's destination, or ``None`` when tracing is disabled or not configured.

        Raises:
            ConfigError: the stored secrets cannot be decrypted (a lost key).
        """
        switch = load_switch(session, app_id)
        if switch is None or not switch.enabled or switch.provider is None:
            return None
        config = load_provider_config(session, app_id, switch.provider)
        if config is None:
            return None
        provider = provider_named(config.provider)
        return provider.destination(open_values(config, self._keyring), stored_project(config))
