#!/usr/bin/env bash
# Build councilmatch's image with podman from Debian packages alone, then smoke-test the
# built image's filesystem (no container is started: `podman run` cannot start one on the
# project's machines, setrlimit is refused).
#
#   deploy/build-images.sh [options]
#     --tag TAG            the project's image (default councilmatch:0.1.0, as in docker-compose.yml)
#     --base IMAGE         build on this base instead of the local Debian one (e.g. the official
#                          apache/airflow:3.3.2-python3.11 where its registry is reachable)
#     --cache DIR          where the base's root tarball is kept between runs
#                          (default $COUNCILMATCH_IMAGE_CACHE, else ~/.cache/councilmatch/images)
#     --podman-root DIR    a podman storage of its own (default: podman's usual one)
#     --scratch DIR        where debootstrap lays out the root before it is tarred (default: the
#                          cache); a tmpfs such as /dev/shm makes it and podman's storage much faster
#     --ca-bundle FILE     the certificate store RUN steps see while building on the local base
#                          (default this machine's /etc/ssl/certs/ca-certificates.crt, so a
#                          TLS-inspecting proxy this machine trusts is trusted; never kept in the image)
#     --report FILE        write the smoke results there as JSON
#     --no-smoke           build only
#
# 1. base   debootstrap --variant=minbase bookworm (+ python3.11, its venv, curl, dumb-init), then
#           deploy/base/setup.sh in a chroot (the `airflow` user, the venv, AIRFLOW_HOME), tarred
#           into the cache under a key of those inputs; `podman import` makes it
#           localhost/councilmatch-base:<key> with the official image's environment, user and entrypoint.
# 2. image  podman build --isolation chroot --build-arg BASE=localhost/councilmatch-base:<key> (the Dockerfile).
# 3. smoke  podman create (never started) + podman mount, then chroot as the image's user with the
#           image's environment and working directory: `councilmatch --help`, `airflow version`,
#           the Celery executor imports, the DAG folder imports with no error, and a deliberately
#           broken DAG beside them is reported (so the DAG check can fail).
# Exits non-zero if any step or check fails. Needs root and the Debian packages podman, debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

TAG=councilmatch:0.1.0
BASE_IMAGE=""
CACHE="${COUNCILMATCH_IMAGE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/councilmatch/images}"
PODMAN_ROOT=""
SCRATCH=""
REPORT=""
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
SMOKE=1
SUITE=bookworm
# What the official image gives the Dockerfile that a minbase root lacks. python3-distutils is
# named because debootstrap cannot resolve python3.11-venv's dependency on the virtual
# python3.11-distutils by itself.
BASE_PACKAGES=python3.11,python3.11-venv,python3-distutils,ca-certificates,curl,dumb-init

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG="$2"; shift 2 ;;
    --base) BASE_IMAGE="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --podman-root) PODMAN_ROOT="$2"; shift 2 ;;
    --scratch) SCRATCH="$2"; shift 2 ;;
    --report) REPORT="$2"; shift 2 ;;
    --ca-bundle) CA_BUNDLE="$2"; shift 2 ;;
    --no-smoke) SMOKE=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1;36m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'build-images.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, podman's storage)"
for tool in podman debootstrap chroot flock python3; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian packages: podman debootstrap)"
done

PODMAN=(podman)
if [ -n "$PODMAN_ROOT" ]; then
  mkdir -p "$PODMAN_ROOT"
  PODMAN=(podman --root "$PODMAN_ROOT/storage" --runroot "$PODMAN_ROOT/run")
fi
mkdir -p "$CACHE"
SCRATCH="${SCRATCH:-$CACHE}"
mkdir -p "$SCRATCH"
# One build at a time per cache (the tarball, podman's storage, the tag).
exec 9>"$CACHE/.lock"
flock 9

declare -A SECONDS_OF=()
timed() {  # timed NAME CMD...: run CMD, remember its wall time in seconds
  local name="$1" start; shift
  start=$(date +%s.%N)
  "$@"
  SECONDS_OF[$name]=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$start" "$(date +%s.%N)")
  log "$name: ${SECONDS_OF[$name]} s"
}

# The Debian mirror this machine's apt already uses for the suite (debootstrap's own default if none).
debian_mirror() {
  [ -n "${DEBIAN_MIRROR:-}" ] && { echo "$DEBIAN_MIRROR"; return; }
  python3 - "$SUITE" <<'PY'
import glob, re, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for para in open(path).read().split("\n\n"):
        fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", para, re.M))
        if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split() \
                and "main" in fields.get("Components", "").split():
            print(fields["URIs"].split()[0]); sys.exit()
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
        if m and m.group(2) == suite and "main" in m.group(3).split():
            print(m.group(1)); sys.exit()
PY
}

# The base's inputs; a change to any of them makes a new tarball and a new base tag.
base_key() {
  { echo "$SUITE $(dpkg --print-architecture) $BASE_PACKAGES"; cat deploy/base/setup.sh deploy/base/entrypoint; } \
    | sha256sum | cut -c1-16
}

# A half-made root (an interrupted run): never follow a mount left in it (/proc, /sys).
remove_root() {
  umount "$1/root/proc" "$1/root/sys" 2>/dev/null || true
  rm -rf --one-file-system "$1"
}

make_base_tarball() {  # make_base_tarball OUT.tar
  local out="$1" mirror
  work="$(mktemp -d "$SCRATCH/base-build.XXXXXX")"  # global: the EXIT trap removes it
  trap 'remove_root "$work"' EXIT
  mirror="$(debian_mirror)"
  log "debootstrap --variant=minbase $SUITE ${mirror:-(the default mirror of debootstrap)}"
  # Two stages so dpkg can skip fsync in the chroot (a throwaway root: unsafe-io is safe here).
  debootstrap --foreign --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$work/root" ${mirror:+"$mirror"} \
    >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  echo force-unsafe-io >"$work/root/etc/dpkg/dpkg.cfg.d/unsafe-io"
  chroot "$work/root" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap --second-stage failed"; }
  install -m 755 deploy/base/entrypoint "$work/root/entrypoint"
  chroot "$work/root" /bin/sh -s <deploy/base/setup.sh
  tar --numeric-owner -C "$work/root" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  remove_root "$work"
  trap - EXIT
}

import_base() {  # import_base TARBALL REF
  "${PODMAN[@]}" import \
    --change 'ENV PATH=/home/airflow/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV VIRTUAL_ENV=/home/airflow/.local' \
    --change 'ENV AIRFLOW_HOME=/opt/airflow' \
    --change 'ENV AIRFLOW_USER_HOME_DIR=/home/airflow' \
    --change 'ENV AIRFLOW_UID=50000' \
    --change 'ENV AIRFLOW__CORE__LOAD_EXAMPLES=false' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV LC_ALL=C.UTF-8' \
    --change 'ENV DUMB_INIT_SETSID=1' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'WORKDIR /opt/airflow' \
    --change 'USER 50000' \
    --change 'EXPOSE 8080' \
    --change 'ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]' \
    --change 'CMD []' \
    "$1" "$2" >/dev/null
}

# ---- 1. base --------------------------------------------------------------------------
if [ -z "$BASE_IMAGE" ]; then
  key="$(base_key)"
  tarball="$CACHE/base-$SUITE-$key.tar"
  BASE_IMAGE="localhost/councilmatch-base:$SUITE-$key"
  if [ -f "$tarball" ]; then
    log "base root: cached $tarball"
  else
    timed debootstrap make_base_tarball "$tarball"
  fi
  if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    timed import import_base "$tarball" "$BASE_IMAGE"
  fi
  # Bases of other inputs are stale: drop them (an image still built on one keeps its layers).
  find "$CACHE" -maxdepth 1 -name "base-$SUITE-*.tar" ! -name "${tarball##*/}" -delete
  "${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}}' localhost/councilmatch-base \
    | grep -vxF "$BASE_IMAGE" | xargs -r "${PODMAN[@]}" rmi >/dev/null 2>&1 || true
  # RUN steps fetch from PyPI: they see this machine's certificate store (a mount, not a layer).
  BUILD_OPTS=(--pull=never)
  [ -f "$CA_BUNDLE" ] && BUILD_OPTS+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
else
  BUILD_OPTS=()
fi

# ---- 2. image -------------------------------------------------------------------------
build_image() {
  log "podman build --isolation chroot --build-arg BASE=$BASE_IMAGE -t $TAG"
  "${PODMAN[@]}" build --isolation chroot "${BUILD_OPTS[@]}" --build-arg "BASE=$BASE_IMAGE" \
    -t "$TAG" -f Dockerfile "$ROOT"
}
previous="$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)"
timed build build_image
# The previous build of TAG, now untagged; in a storage of its own, every dangling layer too.
if [ -n "$previous" ] && [ "$previous" != "$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$TAG")" ]; then
  "${PODMAN[@]}" rmi "$previous" >/dev/null 2>&1 || true
fi
if [ -n "$PODMAN_ROOT" ]; then "${PODMAN[@]}" image prune -f >/dev/null; fi

[ "$SMOKE" = 1 ] || exit 0

# ---- 3. smoke -------------------------------------------------------------------------
RESULTS="$(mktemp -d /tmp/councilmatch-smoke.XXXXXX)"
CTR=""
MNT=""
cleanup() {
  if [ -n "$MNT" ]; then umount "$MNT/proc" 2>/dev/null || true; fi
  if [ -n "$CTR" ]; then
    "${PODMAN[@]}" umount "$CTR" >/dev/null 2>&1 || true
    "${PODMAN[@]}" rm -f "$CTR" >/dev/null 2>&1 || true
  fi
  rm -rf "$RESULTS"
}
trap cleanup EXIT

smoke() {
  local smoke_start; smoke_start=$(date +%s.%N)
  CTR="$("${PODMAN[@]}" create --name "councilmatch-smoke-$$" "$TAG")"  # created, never started
  MNT="$("${PODMAN[@]}" mount "$CTR")"
  mount -t proc proc "$MNT/proc"
  for dev in null:1:3 zero:1:5 random:1:8 urandom:1:9; do  # what Python needs of /dev
    IFS=: read -r name major minor <<<"$dev"
    [ -e "$MNT/dev/$name" ] || mknod -m 666 "$MNT/dev/$name" c "$major" "$minor"
  done

  # The container's user, home, environment and working directory, as the image declares them.
  local user uid gid home workdir
  user="$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$TAG")"
  workdir="$("${PODMAN[@]}" image inspect --format '{{.Config.WorkingDir}}' "$TAG")"
  mapfile -t ENVS < <("${PODMAN[@]}" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$TAG" | sed '/^$/d')
  IFS=: read -r uid gid home < <(awk -F: -v u="${user%%:*}" '$1 == u || $3 == u {print $3 ":" $4 ":" $6; exit}' "$MNT/etc/passwd")
  [ -n "$uid" ] || die "the image's user ${user:-root} is not in its /etc/passwd"
  IMAGE_USER="$uid:$gid"

  in_image() {  # in_image NAME CMD...: run CMD in the image, output and exit code into $RESULTS/NAME.*
    local name="$1"; shift
    set +e
    chroot --userspec="$uid:$gid" --groups="$gid" "$MNT" /usr/bin/env -i "${ENVS[@]}" HOME="$home" \
      /bin/sh -c 'cd "$0" && exec "$@"' "${workdir:-/}" "$@" >"$RESULTS/$name.out" 2>&1 </dev/null
    echo $? >"$RESULTS/$name.rc"
    set -e
  }
  # One Python process for the import checks (each start imports Airflow: seconds apiece).
  # The DAG folder must import with no error, and the same check on the DAGs plus one broken
  # file must name that file (so the check can fail).
  local dags
  dags="$(printf '%s\n' "${ENVS[@]}" | sed -n 's/^AIRFLOW__CORE__DAGS_FOLDER=//p')"
  [ -n "$dags" ] || die "the image sets no AIRFLOW__CORE__DAGS_FOLDER"
  cp -a "$MNT$dags" "$MNT/tmp/canary-dags"
  printf 'from airflow.sdk import dag\nraise RuntimeError("broken on purpose")\n' >"$MNT/tmp/canary-dags/broken_dag.py"
  chown -R "$uid:$gid" "$MNT/tmp/canary-dags"

  log "smoke: councilmatch --help, airflow version, Celery executor, DAG imports (as uid $uid in $workdir)"
  in_image councilmatch_help councilmatch --help
  in_image airflow_version airflow version
  in_image imports python -c '
import json, sys
from airflow.models import DagBag

out = {}
try:
    import airflow.providers.celery.executors.celery_executor as celery_executor
    out["celery_executor"] = celery_executor.__name__
except Exception as exc:  # reported, not raised: the DAG checks still run
    out["celery_executor"] = f"ERROR {type(exc).__name__}: {exc}"
for name, folder in (("dags", sys.argv[1]), ("canary_dags", sys.argv[2])):
    bag = DagBag(dag_folder=folder)
    out[name] = {"dag_ids": sorted(bag.dag_ids), "import_errors": bag.import_errors}
print("SMOKE " + json.dumps(out))
' "$dags" /tmp/canary-dags
  SECONDS_OF[smoke]=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$smoke_start" "$(date +%s.%N)")
}
smoke

# Verdict and report.
TIMINGS="$(for k in "${!SECONDS_OF[@]}"; do echo "$k=${SECONDS_OF[$k]}"; done)"
python3 - "$RESULTS" "$TAG" "$BASE_IMAGE" "$IMAGE_USER" "${REPORT:-}" "$TIMINGS" <<'PY'
import json, sys
from pathlib import Path

results, tag, base, user, report, timings = sys.argv[1:7]
results = Path(results)


def step(name):
    out = (results / f"{name}.out").read_text(errors="replace")
    return {"rc": int((results / f"{name}.rc").read_text()), "output": out[-6000:]}


imports = step("imports")
lines = [l for l in imports["output"].splitlines() if l.startswith("SMOKE ")]
found = json.loads(lines[-1][len("SMOKE "):]) if lines else {}
missing = {"dag_ids": [], "import_errors": None}
out = {
    "image": tag, "base": base, "user": user,
    "seconds": {k: float(v) for k, v in (l.split("=") for l in timings.split() if l)},
    "councilmatch_help": step("councilmatch_help"),
    "airflow_version": step("airflow_version"),
    "imports": imports,
    "celery_executor": found.get("celery_executor"),
    "dags": found.get("dags", missing),
    "canary_dags": found.get("canary_dags", missing),
}
failures = []
for name in ("councilmatch_help", "airflow_version", "imports"):
    if out[name]["rc"] != 0:
        failures.append(f"{name} exited {out[name]['rc']}:\n{out[name]['output'][-2000:]}")
if out["celery_executor"] != "airflow.providers.celery.executors.celery_executor":
    failures.append(f"the Celery executor does not import: {out['celery_executor']}")
if out["dags"]["import_errors"] or not out["dags"]["dag_ids"]:
    failures.append(f"DAG import errors: {out['dags']['import_errors']!r}, DAGs: {out['dags']['dag_ids']!r}")
canary = out["canary_dags"]["import_errors"] or {}
if not any(k.endswith("broken_dag.py") for k in canary):
    failures.append(f"the DAG check missed a broken DAG file: {canary!r}")
out["ok"] = not failures
if report:
    Path(report).write_text(json.dumps(out, indent=2) + "\n")
usage = [l.strip() for l in out["councilmatch_help"]["output"].splitlines() if "Usage:" in l]
print(f"smoke councilmatch --help: exit {out['councilmatch_help']['rc']}: {(usage or [''])[0]}")
print(f"smoke airflow version: exit {out['airflow_version']['rc']}: {out['airflow_version']['output'].strip()[-80:]}")
print(f"smoke Celery executor: {out['celery_executor']}")
print(f"smoke dags: {', '.join(out['dags']['dag_ids'])}; import errors: {len(out['dags']['import_errors'] or {})}")
print(f"smoke canary: broken DAG reported: {any(k.endswith('broken_dag.py') for k in canary)}")
if failures:
    sys.exit("smoke test failed:\n" + "\n".join(failures))
print(f"{tag} built on {base} and smoke-tested")
PY
