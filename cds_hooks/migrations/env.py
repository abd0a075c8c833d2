"""Alembic's entry point: migrations run on the connection `cds_hooks.migrations` hands over."""

from alembic import context

from cds_hooks.store import metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
