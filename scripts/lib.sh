# shellcheck shell=bash
# Helpers shared by scripts/dev and scripts/test. Source it; do not run it.
#
# Sourcing installs EXIT/INT/TERM traps that undo whatever these helpers
# started (moto, a private Postgres cluster), so callers must not replace them.
# Use lg_on_exit to add more cleanup instead.

LG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LG_STATE="$LG_ROOT/.lakegate" # git-ignored: logs, pid files, pointers
LG_VENV="$LG_ROOT/.venv"
mkdir -p "$LG_STATE"

lg_root() { printf '%s\n' "$LG_ROOT"; }

# A connection URL with its user-info (user and password) hidden, for printing.
lg_redact_url() { printf '%s\n' "$1" | sed -E 's#://[^/?#]*@#://***@#'; }

lg_log() { printf 'lakegate: %s\n' "$*" >&2; }

lg_die() {
  printf 'lakegate: error: %s\n' "$*" >&2
  exit 1
}

# Print the last lines of a log file to stderr, for error messages.
lg_tail() {
  [[ -f $1 ]] || return 0
  printf -- '----- last lines of %s -----\n' "$1" >&2
  tail -n "${2:-25}" "$1" >&2 || true
  printf -- '-----\n' >&2
}

# ---------------------------------------------------------------------------
# Cleanup registry
# ---------------------------------------------------------------------------
# Commands run in reverse order of registration when the script ends, however
# it ends. Only things these scripts started are ever stopped: processes by
# their recorded PID, never by name.
LG_CLEANUP=()
LG_CLEANED_UP=

# lg_on_exit CMD [ARGS...]: run CMD ARGS at exit (quoted safely for eval).
lg_on_exit() {
  LG_CLEANUP+=("$(printf '%q ' "$@")")
}

lg_cleanup() {
  # errexit off: one failing step must not skip the others.
  set +e
  [[ -n $LG_CLEANED_UP ]] && return 0
  LG_CLEANED_UP=1
  local i
  for ((i = ${#LG_CLEANUP[@]} - 1; i >= 0; i--)); do
    eval "${LG_CLEANUP[i]}"
  done
}

trap lg_cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs exactly once.
trap 'exit 130' INT
trap 'exit 143' TERM

# The command line of PID ("" when it is gone).
lg_pid_args() {
  if [[ -r /proc/$1/cmdline ]]; then
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
  else
    ps -o args= -p "$1" 2>/dev/null || true
  fi
}

# True while PID runs (a zombie counts as gone).
lg_pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  if [[ -r /proc/$1/stat ]]; then
    state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  else
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  fi
  [[ $state != Z* ]]
}

# lg_kill_pid PID PATTERN [PIDFILE]: stop PID if its command line still
# contains PATTERN (guards against a recycled PID), TERM first, KILL after 10 s.
lg_kill_pid() {
  local pid=$1 pattern=$2 pidfile=${3:-} i
  if lg_pid_alive "$pid" && [[ $(lg_pid_args "$pid") == *"$pattern"* ]]; then
    kill -TERM "$pid" 2>/dev/null
    # moto takes a few seconds to exit after TERM.
    for ((i = 0; i < 100; i++)); do
      lg_pid_alive "$pid" || break
      sleep 0.1
    done
    if lg_pid_alive "$pid"; then
      lg_log "$pattern (pid $pid) ignored TERM; killing it"
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  [[ -n $pidfile ]] && rm -f "$pidfile"
  return 0
}

# ---------------------------------------------------------------------------
# System packages
# ---------------------------------------------------------------------------
LG_APT_UPDATED=

# lg_apt_install PKG...: install Debian packages non-interactively (CI has no
# stdin). Output goes to .lakegate/apt.log and is shown only on failure.
lg_apt_install() {
  local sudo=() log="$LG_STATE/apt.log"
  command -v apt-get >/dev/null || lg_die "apt-get not found; please install: $*"
  if ((EUID != 0)); then
    command -v sudo >/dev/null || lg_die "need root or sudo to apt-get install: $*"
    sudo=(sudo -n) # -n: fail instead of prompting for a password
  fi
  lg_log "installing $* with apt-get (first run only)"
  if [[ -z $LG_APT_UPDATED ]]; then
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1; then
      lg_tail "$log"
      lg_die "apt-get update failed"
    fi
    LG_APT_UPDATED=1
  fi
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@" >>"$log" 2>&1; then
    lg_tail "$log"
    lg_die "apt-get install $* failed"
  fi
}

# lg_need_cmd CMD PKG: make sure CMD exists, installing PKG if it does not.
lg_need_cmd() {
  command -v "$1" >/dev/null || lg_apt_install "$2"
  command -v "$1" >/dev/null || lg_die "$1 still not found after installing $2"
}

# ---------------------------------------------------------------------------
# Python venv with the AWS emulator and the AWS CLI
# ---------------------------------------------------------------------------
lg_ensure_venv() {
  local req="$LG_ROOT/scripts/requirements.txt" stamp="$LG_VENV/.requirements.sha256"
  local want log="$LG_STATE/pip.log" lock
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" ]] && "$LG_VENV/bin/python" -c '' 2>/dev/null; then
    return 0
  fi

  # scripts/dev and scripts/test may start together; install only once.
  exec {lock}>"$LG_STATE/venv.lock"
  flock "$lock"
  if ! [[ -f $stamp && $(<"$stamp") == "$want" ]] || ! "$LG_VENV/bin/python" -c '' 2>/dev/null; then
    lg_log "installing the AWS emulator, the AWS CLI and the test tools into .venv (first run only, ~1 min)"
    command -v python3 >/dev/null || lg_apt_install python3 python3-venv
    # A venv whose interpreter no longer runs (python upgraded or removed) is rebuilt.
    if ! "$LG_VENV/bin/python" -c '' 2>/dev/null; then
      rm -rf "$LG_VENV"
      if ! python3 -m venv "$LG_VENV" >>"$log" 2>&1; then
        # Debian's system python ships venv/ensurepip separately.
        rm -rf "$LG_VENV"
        lg_apt_install python3-venv
        python3 -m venv "$LG_VENV" >>"$log" 2>&1 || {
          lg_tail "$log"
          lg_die "python3 -m venv failed"
        }
      fi
    fi
    rm -f "$stamp"
    if ! "$LG_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      --no-input -r "$req" >>"$log" 2>&1; then
      lg_tail "$log"
      lg_die "pip install -r scripts/requirements.txt failed (full log: $log)"
    fi
    printf '%s\n' "$want" >"$stamp"
  fi
  exec {lock}>&-
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
# Print the path of a PostgreSQL program: PATH first, then the newest
# /usr/lib/postgresql/*/bin (Debian keeps initdb and pg_ctl only there).
lg_pg_bin() {
  local found
  if found=$(command -v "$1"); then
    printf '%s\n' "$found"
    return 0
  fi
  found=$(printf '%s\n' /usr/lib/postgresql/*/bin/"$1" | sort -V | tail -n 1)
  [[ -x $found ]] || return 1
  printf '%s\n' "$found"
}

lg_ensure_pg_client() {
  local tool dir
  for tool in psql createdb pg_isready; do
    command -v "$tool" >/dev/null && continue
    dir=$(dirname "$(lg_pg_bin "$tool" || echo /nonexistent/x)")
    if [[ -x $dir/$tool ]]; then
      PATH="$dir:$PATH"
    else
      lg_apt_install postgresql-client
    fi
  done
  for tool in psql createdb pg_isready; do
    command -v "$tool" >/dev/null || lg_die "PostgreSQL client tool $tool not found"
  done
}

# Run a server-side PostgreSQL program as the postgres user when we are root
# (initdb refuses to run as root). cd / first: the postgres user cannot enter
# root's home, and PostgreSQL programs look up the working directory.
lg_as_postgres() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

lg_stop_private_postgres() {
  local pgd=$1 pg_ctl
  if [[ -f $pgd/data/postmaster.pid ]] && pg_ctl=$(lg_pg_bin pg_ctl); then
    lg_as_postgres "$pg_ctl" -D "$pgd/data" -m fast -w stop >/dev/null 2>&1 ||
      lg_log "could not stop the private PostgreSQL in $pgd (see $pgd/log)"
  fi
  rm -rf "$pgd"
  if [[ $(cat "$LG_STATE/postgres-cluster" 2>/dev/null) == "$pgd" ]]; then
    rm -f "$LG_STATE/postgres-cluster"
  fi
}

# lg_new_cluster VAR [durable]: makes and starts a throwaway cluster under /tmp on a free
# port, stopped and removed at exit; sets VAR to "<directory> <port>". Without `durable`,
# fsync and synchronous commits are off (fast; a crash may lose the last commits).
lg_new_cluster() {
  local -n lg_cluster_out=$1
  local initdb pg_ctl pgd port speed=""
  [[ ${2:-} == durable ]] || speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if ! initdb=$(lg_pg_bin initdb) || ! pg_ctl=$(lg_pg_bin pg_ctl); then
    lg_apt_install postgresql
    if ! initdb=$(lg_pg_bin initdb) || ! pg_ctl=$(lg_pg_bin pg_ctl); then
      lg_die "initdb/pg_ctl not found even after installing postgresql"
    fi
  fi
  if ((EUID == 0)); then
    id postgres >/dev/null 2>&1 || lg_die "running as root but there is no 'postgres' user to run initdb as"
  fi

  # Under /tmp: every parent directory must be reachable by the postgres user.
  pgd=$(mktemp -d /tmp/lakegate-pg.XXXX)
  # Registered before starting, so a half-started cluster is cleaned up too.
  lg_on_exit lg_stop_private_postgres "$pgd"
  ((EUID == 0)) && chown postgres:postgres "$pgd"
  chmod 700 "$pgd"
  port=$(lg_free_port)

  if ! lg_as_postgres "$initdb" -D "$pgd/data" -U postgres -A trust -E UTF8 \
    --no-locale --no-sync >"$pgd/initdb.log" 2>&1; then
    lg_tail "$pgd/initdb.log"
    lg_die "initdb failed"
  fi
  if ! lg_as_postgres "$pg_ctl" -D "$pgd/data" -l "$pgd/log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $pgd $speed" \
    start >/dev/null 2>&1; then
    lg_tail "$pgd/log"
    lg_die "the private PostgreSQL did not start"
  fi
  # shellcheck disable=SC2034 # a nameref: the caller's variable
  lg_cluster_out="$pgd $port"
}

# Start a throwaway cluster under /tmp on a free port (docs/testing.md).
lg_start_private_postgres() {
  local cluster pgd port
  lg_new_cluster cluster
  read -r pgd port <<<"$cluster"
  printf '%s\n' "$pgd" >"$LG_STATE/postgres-cluster"
  lg_log "no PostgreSQL to use; started a private one in $pgd on 127.0.0.1:$port"
  createdb -h 127.0.0.1 -p "$port" -U postgres -w lakegate ||
    lg_die "createdb lakegate failed on the private PostgreSQL"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/lakegate"
}

# A cluster of its own for the chaos suite, which crashes and restarts it
# (lg_restart_postgres) without disturbing the server every other test uses. Exports
# LAKEGATE_TEST_PG_RESTARTABLE (its directory) and LAKEGATE_TEST_PG_RESTARTABLE_URL.
lg_start_restartable_postgres() {
  local cluster pgd port
  # Durable: a crash loses nothing committed, as in production.
  lg_new_cluster cluster durable
  read -r pgd port <<<"$cluster"
  export LAKEGATE_TEST_PG_RESTARTABLE="$pgd"
  export LAKEGATE_TEST_PG_RESTARTABLE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# lg_restart_postgres DIR: stops the cluster in DIR as a crash would (immediate: no
# checkpoint, every connection cut) and starts it again with the same settings.
lg_restart_postgres() {
  local pgd=$1 pg_ctl
  pg_ctl=$(lg_pg_bin pg_ctl) || lg_die "pg_ctl not found"
  lg_as_postgres "$pg_ctl" -D "$pgd/data" -l "$pgd/log" -m immediate -w -t 60 restart >/dev/null 2>&1 || {
    lg_tail "$pgd/log"
    lg_die "the PostgreSQL in $pgd did not restart"
  }
}

# Make DATABASE_URL point at a usable database named lakegate:
#  1. DATABASE_URL already set and answering: keep it;
#  2. else the usual server on 127.0.0.1:5432 (trust auth, user postgres);
#  3. else a private throwaway cluster, stopped at exit.
# LAKEGATE_PG_FORCE_PRIVATE=1 skips 1 and 2 (to test the fallback).
lg_ensure_postgres() {
  lg_ensure_pg_client
  if [[ ${LAKEGATE_PG_FORCE_PRIVATE:-} != 1 ]]; then
    if [[ -n ${DATABASE_URL:-} ]]; then
      if pg_isready -q -t 3 -d "$DATABASE_URL"; then
        lg_log "using DATABASE_URL from the environment"
        return 0
      fi
      lg_log "DATABASE_URL is set but its server does not answer; looking elsewhere"
    fi
    # -w: never prompt for a password (CI has no stdin); without trust auth we
    # cannot create the database, so fall through to a private cluster.
    if pg_isready -q -t 3 -h 127.0.0.1 -p 5432 &&
      psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -qtAc 'select 1' >/dev/null 2>&1; then
      if [[ $(psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -qtAc \
        "select 1 from pg_database where datname = 'lakegate'") != 1 ]]; then
        createdb -w -h 127.0.0.1 -p 5432 -U postgres lakegate ||
          lg_die "createdb lakegate failed on 127.0.0.1:5432"
      fi
      export DATABASE_URL=postgres://postgres@127.0.0.1:5432/lakegate
      lg_log "using the PostgreSQL server on 127.0.0.1:5432 (database lakegate)"
      return 0
    fi
  fi
  lg_start_private_postgres
}

# ---------------------------------------------------------------------------
# moto (AWS emulator)
# ---------------------------------------------------------------------------
lg_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True if something accepts TCP connections on 127.0.0.1:PORT.
lg_port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# lg_start_moto PORT: start moto_server on 127.0.0.1:PORT, stopped at exit.
lg_start_moto() {
  local port=$1 url="http://127.0.0.1:$1" log="$LG_STATE/moto-$1.log" pidfile="$LG_STATE/moto-$1.pid"
  local pid deadline hint=""
  if ! [[ $port =~ ^[0-9]+$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
    lg_die "invalid moto port: '$port'"
  fi
  lg_need_cmd curl curl

  # Test runs use a new port each time; drop their old logs.
  find "$LG_STATE" -maxdepth 1 -name 'moto-*.log' -mtime +7 -delete 2>/dev/null || true

  if lg_port_in_use "$port"; then
    if [[ -f $pidfile ]]; then
      hint=" An earlier run may have left it running: pid $(<"$pidfile") per $pidfile (stop it with: kill $(<"$pidfile"))."
    fi
    if curl -sf -o /dev/null --max-time 3 "$url/moto-api/"; then
      lg_die "port $port is taken: a moto server already answers at $url.$hint Stop it, or choose another port with LAKEGATE_MOTO_PORT=<port>."
    fi
    lg_die "port $port is taken by another program. Choose another port with LAKEGATE_MOTO_PORT=<port>."
  fi

  # A simple command with setsid/nohup: $! is moto_server's own PID (no
  # wrapper subshell; scripts run without job control), and moto is out of
  # the terminal's process group, so Ctrl-C reaches it only via our cleanup.
  setsid nohup "$LG_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$pidfile"
  lg_on_exit lg_kill_pid "$pid" moto_server "$pidfile"

  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if curl -sf -o /dev/null --max-time 1 "$url/moto-api/"; then
      return 0
    fi
    if ! lg_pid_alive "$pid"; then
      lg_tail "$log"
      lg_die "moto_server exited during start-up (log: $log)"
    fi
    sleep 0.1
  done
  lg_tail "$log"
  lg_die "moto_server did not answer at $url/moto-api/ within 30 s (log: $log)"
}

# lg_start_aws_proxy MOTO_URL PORT: the test proxy in front of moto (it answers the Athena
# calls moto lacks: BatchGetQueryExecution, UpdateWorkGroup), stopped at exit.
lg_start_aws_proxy() {
  local upstream=$1 port=$2 log="$LG_STATE/aws-proxy-$2.log" pid deadline
  if lg_port_in_use "$port"; then
    lg_die "port $port (for the AWS test proxy) is taken. Choose another with LAKEGATE_AWS_PROXY_PORT=<port>."
  fi
  cargo build --locked -q -p lakegate-testkit --bin lakegate-aws-proxy ||
    lg_die "could not build the AWS test proxy"
  setsid nohup "$LG_ROOT/target/debug/lakegate-aws-proxy" "$upstream" "127.0.0.1:$port" </dev/null >"$log" 2>&1 &
  pid=$!
  lg_on_exit lg_kill_pid "$pid" lakegate-aws-proxy
  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/moto-api/"; then
      return 0
    fi
    if ! lg_pid_alive "$pid"; then
      lg_tail "$log"
      lg_die "the AWS test proxy exited during start-up (log: $log)"
    fi
    sleep 0.1
  done
  lg_tail "$log"
  lg_die "the AWS test proxy did not answer on port $port within 30s (log: $log)"
}

# lg_seed_moto ENDPOINT: create the sample catalog, buckets and IAM policy.
lg_seed_moto() {
  "$LG_VENV/bin/python" "$LG_ROOT/scripts/seed_moto.py" "$1"
}

# ---------------------------------------------------------------------------
# Browser tests: Debian's chromium driven by playwright-core (never a
# downloaded browser: only the package registries are reachable).
# ---------------------------------------------------------------------------
lg_ensure_browser() {
  lg_need_cmd chromium chromium
  lg_need_cmd node nodejs
  local dir="$LG_ROOT/tests/browser" stamp
  stamp="$dir/node_modules/.lakegate-lock-sha256"
  if [[ ! -f $stamp ]] || [[ $(cat "$stamp") != "$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)" ]]; then
    lg_log "installing playwright-core for the browser tests (first run only)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >"$LG_STATE/npm.log" 2>&1) ||
      { lg_tail "$LG_STATE/npm.log"; lg_die "npm ci failed in tests/browser"; }
    sha256sum "$dir/package-lock.json" | cut -d' ' -f1 >"$stamp"
  fi
}

# lg_start_lakegate PORT DATABASE_URL: run the built binary with development
# sign-in on 127.0.0.1:PORT against the AWS endpoint already exported, and wait
# until /healthz answers. Stopped at exit.
lg_start_lakegate() {
  local port=$1 db_url=$2 log="$LG_STATE/lakegate-$1.log" pid i
  DATABASE_URL="$db_url" LAKEGATE_LISTEN="127.0.0.1:$port" LAKEGATE_PUBLIC_URL="http://127.0.0.1:$port" \
    LAKEGATE_DEV_LOGIN="${LG_DEV_LOGIN:-true}" LAKEGATE_SWEEP_INTERVAL=off \
    LAKEGATE_RESULTS_LOCATION=s3://lakegate-athena-results/lakegate/ \
    LAKEGATE_PERMISSIONS_BOUNDARY_ARN=arn:aws:iam::123456789012:policy/lakegate-boundary \
    setsid nohup "$LG_ROOT/target/debug/lakegate" serve </dev/null >"$log" 2>&1 &
  pid=$!
  lg_on_exit lg_kill_pid "$pid" "lakegate serve"
  for ((i = 0; i < 300; i++)); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then
      return 0
    fi
    lg_pid_alive "$pid" || break
    sleep 0.1
  done
  lg_tail "$log"
  lg_die "lakegate did not become healthy on port $port"
}

# lg_scratch_database NAME: a database of its own for one run, dropped at exit;
# sets LG_SCRATCH_URL. (Not meant for $(...): the cleanup must be registered here.)
lg_scratch_database() {
  local name=$1
  PGOPTIONS="-c client_min_messages=warning" psql -q "$DATABASE_URL" -c "drop database if exists $name" -c "create database $name" >/dev/null ||
    lg_die "could not create database $name"
  lg_on_exit psql -q "$DATABASE_URL" -c "drop database if exists $name with (force)"
  LG_SCRATCH_URL="${DATABASE_URL%/*}/$name"
}

# ---------------------------------------------------------------------------
# OpenID Connect test provider: npm oidc-provider in tests/oidc (docs/testing.md)
# ---------------------------------------------------------------------------
# Install tests/oidc/node_modules with `npm ci` when it is missing or
# package-lock.json changed (sha256 stamp inside node_modules).
# lg_npm_ci DIR WHAT: install DIR's package-lock.json into DIR/node_modules (npm ci), once
# per lock file; WHAT names it in messages.
lg_npm_ci() {
  local dir="$LG_ROOT/$1" what=$2 name log want lock stamp
  name=$(basename "$dir")
  log="$LG_STATE/npm-$name.log"
  stamp="$dir/node_modules/.lakegate-lock-sha256"
  lg_need_cmd node nodejs
  command -v npm >/dev/null || lg_apt_install npm
  [[ -f $dir/package-lock.json ]] || lg_die "$1/package-lock.json is missing"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
    return 0
  fi

  # scripts/dev and scripts/test may start together; install only once.
  exec {lock}>"$LG_STATE/npm-$name.lock"
  flock "$lock"
  if ! [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
    lg_log "installing $what into $1/node_modules (npm ci, first run only)"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
      lg_tail "$log"
      lg_die "npm ci failed in $1 (full log: $log)"
    fi
    printf '%s\n' "$want" >"$stamp"
  fi
  exec {lock}>&-
}

lg_ensure_oidc_provider() {
  lg_npm_ci tests/oidc "the test OpenID Connect provider"
}

# The independent MCP client (npm @modelcontextprotocol/sdk) that crates/server/tests/clients.rs
# drives lakegate's /mcp with.
lg_ensure_mcp_client() {
  lg_npm_ci tests/mcp "the MCP client (@modelcontextprotocol/sdk)"
}

# lg_start_oidc_provider PORT APP_URL: start tests/oidc/provider.mjs on
# 127.0.0.1:PORT (issuer http://127.0.0.1:PORT, redirect URI APP_URL/auth/callback),
# wait until discovery answers, stop it at exit. Sets LG_OIDC_ISSUER.
lg_start_oidc_provider() {
  local port=${1:-} app_url=${2:-} issuer log pidfile pid deadline hint=""
  if ! [[ $port =~ ^[0-9]+$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
    lg_die "invalid OpenID Connect provider port: '$port'"
  fi
  [[ $app_url == http://* || $app_url == https://* ]] ||
    lg_die "lg_start_oidc_provider: APP_URL must be lakegate's base URL (got '$app_url')"
  issuer="http://127.0.0.1:$port" log="$LG_STATE/oidc-$port.log" pidfile="$LG_STATE/oidc-$port.pid"
  lg_need_cmd curl curl
  lg_ensure_oidc_provider

  # Test runs use a new port each time; drop their old logs.
  find "$LG_STATE" -maxdepth 1 -name 'oidc-*.log' -mtime +7 -delete 2>/dev/null || true

  if lg_port_in_use "$port"; then
    if [[ -f $pidfile ]]; then
      hint=" An earlier run may have left it running: pid $(<"$pidfile") per $pidfile (stop it with: kill $(<"$pidfile"))."
    fi
    lg_die "port $port is taken; cannot start the OpenID Connect provider there.$hint"
  fi

  # A simple command with setsid/nohup: $! is node's own PID (see lg_start_moto).
  PORT="$port" APP_URL="$app_url" \
    setsid nohup node "$LG_ROOT/tests/oidc/provider.mjs" </dev/null >"$log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$pidfile"
  lg_on_exit lg_kill_pid "$pid" provider.mjs "$pidfile"

  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if curl -sf -o /dev/null --max-time 1 "$issuer/.well-known/openid-configuration"; then
      # shellcheck disable=SC2034 # read by the callers
      LG_OIDC_ISSUER=$issuer
      return 0
    fi
    if ! lg_pid_alive "$pid"; then
      lg_tail "$log"
      lg_die "the OpenID Connect provider exited during start-up (log: $log)"
    fi
    sleep 0.1
  done
  lg_tail "$log"
  lg_die "the OpenID Connect provider did not answer at $issuer/.well-known/openid-configuration within 30 s (log: $log)"
}
