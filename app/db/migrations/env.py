"""Alembic environment: the URL comes from the caller (``app.db.migrate``), never from an ini file."""

from __future__ import annotations

from alembic import context

from app.db.models import Base
from app.db.session import engine_for

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "app.db.migrate sets sqlalchemy.url"

with engine_for(url).connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
