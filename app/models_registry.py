"""Imports every capability's models so ``metadata`` knows all tables (Alembic, the data ledger)."""

from app.audit import models as audit_models
from app.authz import models as authz_models
from app.db import Base
from app.inquiry import models as inquiry_models
from app.lists import models as list_models

metadata = Base.metadata
__all__ = ["audit_models", "authz_models", "inquiry_models", "list_models", "metadata"]
