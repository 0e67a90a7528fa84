"""The default workspace and console account, created once with stable UUIDs."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from opstrail.storage.tables.apps import Account, Tenant


def ensure_default_tenant(session: Session) -> tuple[str, str]:
    """Return ``(tenant_id, account_id)``, creating both on first start."""
    tenant = session.scalars(select(Tenant).order_by(Tenant.created_at).limit(1)).first()
    if tenant is None:
        tenant = Tenant(id=str(uuid.uuid4()), name="Default workspace")
        session.add(tenant)
        session.flush()
    account = session.scalars(
        select(Account).where(Account.tenant_id == tenant.id).order_by(Account.created_at).limit(1)
    ).first()
    if account is None:
        account = Account(id=str(uuid.uuid4()), tenant_id=tenant.id, name="admin")
        session.add(account)
        session.flush()
    return tenant.id, account.id
