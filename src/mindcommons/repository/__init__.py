"""Site repository: SQLAlchemy 2 models, Alembic migrations and ``SiteRepository``."""

from mindcommons.repository.repository import SiteRepository
from mindcommons.repository.review import ReviewEntry
from mindcommons.repository.store import BatchResult

__all__ = ["BatchResult", "ReviewEntry", "SiteRepository"]
