#!/bin/sh
# Runs as root inside the debootstrapped root (chroot) before it becomes the local base image.
# It lays out what the official apache/airflow image gives a derived Dockerfile: an `airflow`
# user (uid 50000, primary group 0, so an arbitrary uid with gid 0 can run it), a Python
# venv at /home/airflow/.local that `pip` installs into as that user (VIRTUAL_ENV, first on
# PATH: set by deploy/build-images.sh), AIRFLOW_HOME=/opt/airflow with dags/ and logs/, and
# /entrypoint behind dumb-init. Airflow itself is not preinstalled: the Dockerfile installs
# it, pinned by uv.lock.
set -eu
useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash \
  --comment "Airflow" airflow
python3.11 -m venv /home/airflow/.local
mkdir -p /opt/airflow/dags /opt/airflow/logs
chown -R airflow:0 /home/airflow /opt/airflow
chmod -R g+rw /home/airflow /opt/airflow
chmod g=u /etc/passwd
# pip and uv trust the system's certificate store (as Debian's own pip does), not a bundle of
# their own: a build behind a TLS-inspecting proxy mounts its CA bundle there (build-images.sh).
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >/etc/pip.conf
# A smaller image: no package lists, downloaded packages or bootstrap leftovers.
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /debootstrap \
  /var/log/*.log /var/log/apt/* /tmp/* /etc/dpkg/dpkg.cfg.d/unsafe-io
