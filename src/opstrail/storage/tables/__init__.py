"""Table modules, one per aggregate. Importing this package registers all of them on
``Base.metadata``; every new table module must be imported here."""

from opstrail.storage.tables import (  # noqa: F401
    apps,
    chat,
    datasets,
    outbox,
    tracing,
    workflows,
)
