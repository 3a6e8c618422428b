# councilmatch on the official Airflow image: every Airflow component, the Celery
# workers and the review app run this one image (see docker-compose.yml).
#
# BASE is the official image by default. deploy/build-images.sh builds on a local Debian
# base that provides what this file relies on (python3.11 in a venv that `pip` installs
# into as the `airflow` user, AIRFLOW_HOME, the entrypoint) where the official one cannot
# be pulled: --build-arg BASE=localhost/councilmatch-base:<key>.
ARG BASE=apache/airflow:3.3.2-python3.11
FROM ${BASE}

USER airflow
WORKDIR /opt/councilmatch

# Dependencies first (cached while only the code changes), exactly as pinned by
# uv.lock (apache-airflow included), installed by uv into the image's venv (VIRTUAL_ENV).
# UV_COMPILE_BYTECODE: every module's .pyc is made at build time, so no container start or
# Airflow task compiles the libraries again (and PYTHONDONTWRITEBYTECODE cannot make each do so).
ENV UV_COMPILE_BYTECODE=1
COPY --chown=airflow:0 pyproject.toml uv.lock README.md ./
RUN pip install --no-cache-dir "uv==0.13.8" \
 && uv export --frozen --no-dev --no-emit-project --no-hashes --format requirements-txt > /tmp/requirements.txt \
 && grep -qx "apache-airflow==3.3.2" /tmp/requirements.txt \
 && uv pip install --no-cache -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The project itself: the build context less .dockerignore (no tests, docs, venv), so a
# package added to pyproject.toml's list needs no change here; pyproject.toml decides what
# is installed (no dependency resolution: everything is installed above).
COPY --chown=airflow:0 . ./
RUN uv pip install --no-cache --no-deps .

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/councilmatch/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/councilmatch/plugins \
    COUNCILMATCH_HOME=/data/councilmatch
