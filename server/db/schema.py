"""The whole schema: every model module imported, so `Base.metadata` lists every table.

Alembic's `env.py` and the model-versus-migration test use this module rather than
`server.db.models`, so a table defined in another module (audit, feedback) is never missed.
"""

from __future__ import annotations

from server.db import adapter_models, audit_models, feedback_models
from server.db.models import Base

__all__ = ["Base", "adapter_models", "audit_models", "feedback_models"]
