"""Compatibility shim for the native topology test only (put on PYTHONPATH when needed).

celery 5.7 dropped ``celery.backends.database.retry``, which
apache-airflow-providers-celery 3.26 still imports, so the CeleryExecutor cannot
even load with the locked celery 5.7.0. The real fix is pinning
``celery[redis]>=5.5,<5.7`` in pyproject.toml / uv.lock; until then this restores
the decorator as celery 5.6 had it (retry a DB read on a transient database error).
"""

from functools import wraps

try:
    import celery.backends.database as _database
except Exception:  # noqa: BLE001 - celery absent: nothing to patch
    _database = None

if _database is not None and not hasattr(_database, "retry"):
    from sqlalchemy.exc import DatabaseError, InvalidRequestError
    from sqlalchemy.orm.exc import StaleDataError

    def retry(fun):  # noqa: ANN001, ANN201
        @wraps(fun)
        def _inner(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            max_retries = kwargs.pop("max_retries", 3)
            for attempt in range(max_retries):
                try:
                    return fun(*args, **kwargs)
                except (DatabaseError, InvalidRequestError, StaleDataError):
                    if attempt + 1 >= max_retries:
                        raise
            return None

        return _inner

    _database.retry = retry
