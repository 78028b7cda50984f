#!/usr/bin/env bash
# Make sure a PostgreSQL server answers at $TAMGA_TEST_DATABASE_URL, for the test suite.
#
# If one answers already, do nothing and print nothing. Otherwise, on a Debian machine as root
# and for a local URL: install Debian's postgresql if missing, create the cluster if there is
# none, start it (no systemd needed), give the URL's role the URL's password (Debian's pg_hba
# asks for scram passwords over TCP) and create the URL's database if missing. Then check again
# and fail loudly if the server still does not answer.
#
# Uses .venv/bin/python (override with PYTHON=...) for scripts/pg_reachable.py (psycopg).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

URL=${TAMGA_TEST_DATABASE_URL:-postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres}
PY=${PYTHON:-.venv/bin/python}

say() { echo "ensure-postgres: $*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

[[ -x $PY ]] || die "$PY not found: run 'make setup' first"

if "$PY" scripts/pg_reachable.py "$URL" >/dev/null 2>&1; then
    exit 0
fi
say "$("$PY" scripts/pg_reachable.py "$URL" 2>&1 || true)"

mapfile -t parts < <("$PY" scripts/pg_reachable.py --parts "$URL")
[[ ${#parts[@]} -eq 5 ]] || die "cannot read host/port/user from TAMGA_TEST_DATABASE_URL"
host=${parts[0]} port=${parts[1]} user=${parts[2]} password=${parts[3]} dbname=${parts[4]}

case $host in
    localhost | 127.0.0.1 | ::1 | /*) ;;
    *) die "PostgreSQL at $host:$port does not answer; start it or point TAMGA_TEST_DATABASE_URL at a server that does" ;;
esac
[[ $(id -u) -eq 0 ]] || die "no PostgreSQL at $host:$port and not root, so cannot install or start one; start it or set TAMGA_TEST_DATABASE_URL"
command -v apt-get >/dev/null || die "no PostgreSQL at $host:$port and no apt-get to install one; start it or set TAMGA_TEST_DATABASE_URL"

# 1. Debian's postgresql (server binaries plus postgresql-common's pg_* cluster tools).
if ! command -v pg_ctlcluster >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi

# 2. The cluster: the newest version configured under /etc/postgresql, else create one.
version=""
if [[ -d /etc/postgresql ]]; then
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
fi
if [[ -z $version || ! -d /etc/postgresql/$version/main ]]; then
    [[ -n $version ]] || version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
    [[ -n $version ]] || die "postgresql is installed but no server version is under /usr/lib/postgresql"
    say "creating cluster $version/main on port $port"
    pg_createcluster --port "$port" "$version" main >/dev/null
fi
cluster_port=$(pg_conftool -s "$version" main show port 2>/dev/null || echo "$port")
[[ $cluster_port == "$port" ]] ||
    die "cluster $version/main listens on port $cluster_port, not $port as TAMGA_TEST_DATABASE_URL says"

# 3. Start it (without systemd, which containers and CI machines often lack) and wait.
if [[ $(pg_lsclusters -h "$version" main) != *online* ]]; then
    say "starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
ready=0
for _ in $(seq 60); do
    if (cd / && runuser -u postgres -- pg_isready -q -p "$port"); then
        ready=1
        break
    fi
    sleep 0.5
done
[[ $ready -eq 1 ]] || die "cluster $version/main did not start; see /var/log/postgresql/postgresql-$version-main.log"

# 4. The URL's role with the URL's password, and the URL's database (over the Unix socket as
#    the postgres OS user, which Debian's pg_hba lets in by peer authentication).
psql_as_postgres() {
    (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@")
}
psql_as_postgres -v usr="$user" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER', :'usr')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'usr') \gexec
SQL
if [[ -n $password ]]; then
    say "setting the password of role $user"
    psql_as_postgres -v usr="$user" -v pw="$password" <<'SQL'
ALTER ROLE :"usr" WITH LOGIN PASSWORD :'pw';
SQL
fi
psql_as_postgres -v usr="$user" -v db="$dbname" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'usr')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL

# 5. Check again, through the same door the tests use.
if ! msg=$("$PY" scripts/pg_reachable.py "$URL" 2>&1); then
    die "$msg (after install/start of cluster $version/main; check its pg_hba.conf and listen_addresses)"
fi
say "$msg"
