#!/usr/bin/env bash
# First start of the postgres container: one database and role for Airflow's
# metadata, one for the review store (names from deploy/settings.conf, passwords from .env).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE "${AIRFLOW_DB_USER}" LOGIN PASSWORD '${AIRFLOW_DB_PASSWORD}';
CREATE DATABASE "${AIRFLOW_DB_NAME}" OWNER "${AIRFLOW_DB_USER}";
CREATE ROLE "${REVIEW_DB_USER}" LOGIN PASSWORD '${REVIEW_DB_PASSWORD}';
CREATE DATABASE "${REVIEW_DB_NAME}" OWNER "${REVIEW_DB_USER}";
SQL
