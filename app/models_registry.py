"""Imports every capability's models so ``metadata`` knows all tables (Alembic, the data ledger)."""

from app.audit import models as audit_models
from app.authz import models as authz_models
from app.db import Base
from app.escalation import models as escalation_models
from app.governance import models as governance_models
from app.hq import models as hq_models
from app.inquiry import models as inquiry_models
from app.lists import models as list_models
from app.monitoring import models as monitoring_models
from app.reconciliation import models as reconciliation_models
from app.retention import models as retention_models

metadata = Base.metadata
__all__ = [
    "audit_models",
    "authz_models",
    "escalation_models",
    "governance_models",
    "hq_models",
    "inquiry_models",
    "list_models",
    "metadata",
    "monitoring_models",
    "reconciliation_models",
    "retention_models",
]
