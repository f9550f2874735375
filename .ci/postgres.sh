# Sourced by .ci/run: a private PostgreSQL 15 server (Debian's package) for the tests, started in a
# temporary folder and stopped when the script exits. Sets DURABLY_TEST_POSTGRES to its URL.
pg_bin=/usr/lib/postgresql/15/bin
if [ ! -x "$pg_bin/postgres" ]; then
  as_root=$([ "$(id -u)" = 0 ] || echo sudo)
  $as_root apt-get update -q && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q postgresql-15
fi
pg_dir=$(mktemp -d /tmp/durably-ci-pg.XXXXXX)
pg_port=54331
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres >/dev/null
# fsync off: the tests kill workers, not the machine; max_connections for many engines at once
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w start \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400"
stop_postgres() { "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null || true; rm -rf "$pg_dir"; }
trap stop_postgres EXIT
export DURABLY_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$pg_port/postgres"
