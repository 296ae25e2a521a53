#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks; prints its SQLAlchemy URL on stdout.
#
#   export FORGEBOT_TEST_POSTGRES_URL=$(bash scripts/ensure-postgres.sh)
#   bash scripts/ensure-postgres.sh stop
#
# Installs Debian's postgresql when it is missing, then runs `initdb` in its own folder
# ($FORGEBOT_PG_DIR, default /var/tmp/forgebot-pg) and starts it on its own port
# ($FORGEBOT_PG_PORT, default 55432), listening on loopback only with trust authentication,
# so it never touches the system's cluster. Safe to run twice: a running cluster is reused.
# Everything but the URL goes to stderr.
set -euo pipefail

PG_DIR="${FORGEBOT_PG_DIR:-/var/tmp/forgebot-pg}"
PG_PORT="${FORGEBOT_PG_PORT:-55432}"
PG_DB="${FORGEBOT_PG_DB:-forgebot}"
DATA="$PG_DIR/data"

say() { echo "ensure-postgres: $*" >&2; }
die() { say "$*"; exit 1; }

pg_bindir() {
    # The newest installed server version; Debian keeps binaries out of PATH.
    local dir
    dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [[ -x "$dir/initdb" ]] && echo "$dir"
}

install_postgres() {
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and only root can apt-get it"
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
}

# initdb refuses to run as root: as root, the cluster belongs to the postgres user.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

BIN=$(pg_bindir) || { install_postgres; BIN=$(pg_bindir) || die "no initdb after install"; }

if [[ "${1:-}" == "stop" ]]; then
    if [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
    fi
    exit 0
fi

mkdir -p "$PG_DIR"
if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$PG_DIR"
    as_owner test -w "$PG_DIR" || die "user postgres cannot write $PG_DIR (is a parent private?)"
fi
chmod 700 "$PG_DIR"

# Two scripts started at once (make test twice) must not both initdb or start the cluster.
exec 9>"$PG_DIR/.lock"
flock 9

if [[ ! -f "$DATA/PG_VERSION" ]]; then
    say "initdb in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --encoding=UTF8 --no-locale \
        --auth-local=trust --auth-host=trust >&2
fi

if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    say "starting the cluster on 127.0.0.1:$PG_PORT"
    # Loopback only, and the socket in our own folder (not /var/run/postgresql), so trust
    # authentication reaches nobody but local users. `9>&-`: the server must not inherit
    # the lock, or it would hold it for as long as it runs.
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR" start >&2 9>&- \
        || { tail -n 20 "$PG_DIR/server.log" >&2; die "the cluster did not start"; }
fi

# A cluster started earlier may listen on another port: postmaster.pid's fourth line says.
PORT=$(sed -n 4p "$DATA/postmaster.pid")
[[ "$PORT" =~ ^[0-9]+$ ]] || die "cannot read the port from $DATA/postmaster.pid"

psql_admin() {
    as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -tAq "$@"
}
[[ "$PG_DB" =~ ^[a-z_][a-z0-9_]*$ ]] || die "FORGEBOT_PG_DB must be a plain lower-case name"
if [[ -z $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
    say "creating database $PG_DB"
    psql_admin -c "CREATE DATABASE $PG_DB" >&2
fi

echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$PG_DB"
