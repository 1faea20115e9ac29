"""Alembic environment: runs on the engine gridman hands over (config.attributes['engine'])."""

from __future__ import annotations

from alembic import context

from gridman.core.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    from gridman.core.db import autogen_include_name

    engine = context.config.attributes.get("engine")
    if engine is None:
        from gridman.core.db import make_engine

        engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=autogen_include_name,
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
