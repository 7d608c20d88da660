"""Alembic migrations, configured in code (no alembic.ini needed)."""
