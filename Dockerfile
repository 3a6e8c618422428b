# councilmatch on the official Airflow image: every Airflow component, the Celery
# workers and the review app run this one image (see docker-compose.yml).
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/councilmatch

# Dependencies first (cached while only the code changes), exactly as pinned by
# uv.lock; apache-airflow is pinned alongside so pip can never move the image's Airflow.
COPY --chown=airflow:0 pyproject.toml uv.lock README.md ./
RUN pip install --no-cache-dir "uv==0.13.8" \
 && uv export --frozen --no-dev --no-emit-project --no-hashes --format requirements-txt > /tmp/requirements.txt \
 && pip install --no-cache-dir "apache-airflow==3.3.2" -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The project itself (no dependency resolution: everything is installed above).
COPY --chown=airflow:0 councilmatch ./councilmatch
COPY --chown=airflow:0 orchestrate ./orchestrate
COPY --chown=airflow:0 ingest ./ingest
COPY --chown=airflow:0 anonymise ./anonymise
COPY --chown=airflow:0 matching ./matching
COPY --chown=airflow:0 review ./review
COPY --chown=airflow:0 synthetic ./synthetic
COPY --chown=airflow:0 dags ./dags
COPY --chown=airflow:0 plugins ./plugins
COPY --chown=airflow:0 deploy ./deploy
RUN pip install --no-cache-dir --no-deps .

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/councilmatch/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/councilmatch/plugins \
    COUNCILMATCH_HOME=/data/councilmatch
