"""Alembic migrations of the review store (run by review.db.migrate)."""
