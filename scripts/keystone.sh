#!/usr/bin/env bash
# A real OpenStack Keystone (Debian 12's `keystone` package, OpenStack Zed) on loopback, for the tests of the
# gateway's Keystone identities (issue 17). As root on Debian 12; works without systemd.
#
#   bash scripts/keystone.sh provision   # install, configure, bootstrap, seed (idempotent; leaves it as it found it:
#                                        # stopped unless it was running)
#   bash scripts/keystone.sh start       # serve the public API on 127.0.0.1:$KEYSTONE_PORT; waits until it answers
#   bash scripts/keystone.sh stop        # stops exactly the uwsgi master (and its workers) that `start` started
#   bash scripts/keystone.sh status      # exit 0 running and answering, 3 not running, 1 running but not answering
#   bash scripts/keystone.sh env         # shell exports for the openstack CLI as admin: eval "$(... env)"
#   bash scripts/keystone.sh ids         # JSON: URL, domain, project, user (with password) and role ids
#
# Environment:
#   KEYSTONE_PORT               port of the public API on 127.0.0.1 (default 5050, or the port last provisioned or
#                               started with). A start on another port re-runs `keystone-manage bootstrap`, which
#                               updates the catalog's identity endpoints to the new URL.
#   KEYSTONE_TOKEN_EXPIRATION   token lifetime in seconds, read at each `start` ([token] expiration; default 3600,
#                               Keystone's own default). Fernet tokens carry their expiry: a restart with another
#                               value changes only tokens issued after it.
#   KEYSTONE_CACHE              memory (default) or none, read at each `start`. memory: Keystone's own cache
#                               ([cache] enabled, backend dogpile.cache.memory) in one uwsgi worker process (4
#                               threads), so that a revocation invalidates the only cache there is; a validation then
#                               costs Keystone ~10 ms of CPU. none: Debian's default (no cache), two worker processes;
#                               a validation then costs ~0.5 s of CPU here (hundreds of SQL statements). Production
#                               deployments usually run a cache (memcached); the answers are the same either way.
#   KEYSTONE_STATE_DIR          default /var/lib/qga-gateway-keystone
#
# Everything of this instance lives in the state dir, owned by the package's `keystone` user: keystone.conf,
# keystone.db (sqlite), fernet-keys/, credential-keys/, uwsgi.ini, uwsgi.pid, uwsgi.log (uwsgi and request lines),
# keystone.log (Keystone's own log), passwords (generated once, root only), ids.json. /etc/keystone is left as the
# package wrote it. The package's own service (uwsgi on *:5000, /etc/init.d/keystone and keystone.service) is never
# started: the install runs under a policy-rc.d that lets no service start, and the service is disabled after it.
#
# Seed data (the same after every provision): domain Default (id `default`); projects admin (bootstrap), project-a,
# project-b, service; roles admin, member, reader (bootstrap; admin implies member implies reader) and service;
# users admin (admin on project admin, on domain Default and on the system), alice (member on project-a), bob (member
# on project-b), qga-gateway (service on project service: enough to validate others' tokens, see
# test/fixtures/keystone/README.md).
set -euo pipefail

state=${KEYSTONE_STATE_DIR:-/var/lib/qga-gateway-keystone}
conf=$state/keystone.conf
ini=$state/uwsgi.ini
pidfile=$state/uwsgi.pid
expiration=${KEYSTONE_TOKEN_EXPIRATION:-3600}
cache=${KEYSTONE_CACHE:-memory}
case $cache in
memory) cache_conf=$'enabled = true\nbackend = dogpile.cache.memory'; processes=1; threads=4 ;;
none) cache_conf='enabled = false'; processes=2; threads=2 ;;
*) echo "keystone: KEYSTONE_CACHE must be memory or none, not '$cache'" >&2; exit 2 ;;
esac
wsgi_app=/usr/bin/keystone-wsgi-public

log() { echo "keystone: $*" >&2; }
die() { log "$*"; exit 1; }

# The port: KEYSTONE_PORT, else the one the state dir was last provisioned or started with, else 5050.
port() {
    if [[ -n ${KEYSTONE_PORT:-} ]]; then echo "$KEYSTONE_PORT"
    elif [[ -s $state/port ]]; then cat "$state/port"
    else echo 5050; fi
}
url() { echo "http://127.0.0.1:$(port)"; }

need_root() { [[ $(id -u) == 0 ]] || die "$1 needs root"; }
provisioned() { [[ -s $state/ids.json && -s $state/passwords && -s $conf ]]; }

# One command at a time on this state dir: a second caller waits for the first.
lock() {
    mkdir -p /var/lock
    exec 9>/var/lock/qga-gateway-keystone.lock
    flock 9
}

# The pid of the uwsgi master that `start` started, if it is still that process (not a reused pid).
running_pid() {
    local pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--ini $ini" || return 1
    echo "$pid"
}

answers() { curl -fsS -o /dev/null --max-time 5 "$(url)/v3" 2>/dev/null; }

install_packages() {
    if dpkg-query -W -f='${Status}' keystone 2>/dev/null | grep -q '^install ok installed$' &&
        compgen -G '/usr/bin/uwsgi_python3*' >/dev/null && command -v openstack >/dev/null; then
        return 0
    fi
    # invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before starting anything; 101 means "not
    # allowed". The postinst of keystone runs `invoke-rc.d keystone start`, which would start uwsgi on *:5000.
    # A policy already there is put back afterwards, as it was.
    local policy=/usr/sbin/policy-rc.d saved=
    if [[ -e $policy || -L $policy ]]; then
        saved=$(mktemp "$policy.qga-saved-XXXXXX")
        mv -f "$policy" "$saved"
    fi
    # shellcheck disable=SC2064
    trap "rm -f '$policy'; [[ -z '$saved' ]] || mv -f '$saved' '$policy'" EXIT
    printf '#!/bin/sh\n# Written by qga-gateway scripts/keystone.sh for the length of one apt-get install.\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    local before
    before=" $(pgrep -f '[u]wsgi' | tr '\n' ' ' || true) "

    # No database set-up by dbconfig-common, no admin tenant, no endpoint: this script does all that itself.
    debconf-set-selections <<'SEL'
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
SEL
    log "installing Debian's keystone package (OpenStack Zed) and python3-openstackclient"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends keystone python3-openstackclient curl >&2
    rm -f "$policy"
    [[ -z $saved ]] || mv -f "$saved" "$policy"
    trap - EXIT

    local pid
    for pid in $(pgrep -f '[u]wsgi' || true); do
        [[ $before == *" $pid "* ]] && continue
        log "a uwsgi process started during the install (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)): stopping it"
        kill "$pid" 2>/dev/null || true
    done
}

# The package's service stays installed but off: no sysv links, no systemd unit enabled (its postinst enables both).
disable_package_service() {
    update-rc.d keystone disable >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null; then systemctl disable keystone.service >/dev/null 2>&1 || true; fi
}

write_config() {
    local tmp
    tmp=$(mktemp "$state/.keystone.conf.XXXXXX")
    cat >"$tmp" <<CONF
# Written by qga-gateway scripts/keystone.sh at each provision and start: edits are overwritten.
[DEFAULT]
log_file = $state/keystone.log
use_stderr = false

[database]
connection = sqlite:///$state/keystone.db

[token]
provider = fernet
expiration = $expiration

[fernet_tokens]
key_repository = $state/fernet-keys

[fernet_receipts]
key_repository = $state/fernet-keys

[credential]
key_repository = $state/credential-keys

[cache]
$cache_conf
CONF
    chown root:keystone "$tmp"
    chmod 0640 "$tmp"
    mv -f "$tmp" "$conf"

    tmp=$(mktemp "$state/.uwsgi.ini.XXXXXX")
    cat >"$tmp" <<INI
# Written by qga-gateway scripts/keystone.sh at each start: edits are overwritten.
[uwsgi]
http11-socket = 127.0.0.1:$(port)
wsgi-file = $wsgi_app
env = OS_KEYSTONE_CONFIG_FILES=$conf
need-app = true
master = true
processes = $processes
threads = $threads
enable-threads = true
lazy-apps = true
die-on-term = true
no-orphans = true
buffer-size = 65535
uid = keystone
gid = keystone
chdir = $state
pidfile = $pidfile
daemonize = $state/uwsgi.log
INI
    chmod 0644 "$tmp"
    mv -f "$tmp" "$ini"
}

manage() { runuser -u keystone -- keystone-manage --config-file "$conf" "$@"; }

# keystone-manage bootstrap: domain default, project admin, roles admin/member/reader, user admin with the admin role
# on project admin and on the system, region RegionOne, the identity service and its endpoints at our URL. Idempotent:
# it changes only what differs (the endpoints' URL after a change of port).
bootstrap() {
    # shellcheck disable=SC1091
    . "$state/passwords"
    OS_BOOTSTRAP_PASSWORD=$admin manage bootstrap --bootstrap-username admin --bootstrap-project-name admin \
        --bootstrap-role-name admin --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "$(url)/v3/" --bootstrap-public-url "$(url)/v3/" --bootstrap-internal-url "$(url)/v3/"
    port >"$state/port"
}

# Projects, users, roles and role assignments through the API, as the system-scoped admin; writes ids.json.
seed() {
    # shellcheck disable=SC1091
    . "$state/passwords"
    KS_URL=$(url) KS_ADMIN=$admin KS_ALICE=$alice KS_BOB=$bob KS_SERVICE=$qga_gateway python3 - >"$state/ids.json.new" <<'PY'
import json, os, sys, urllib.error, urllib.request

URL = os.environ["KS_URL"] + "/v3"

def call(method, path, body=None, token=None, ok=(200, 201, 204)):
    req = urllib.request.Request(URL + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            data = r.read()
            return r.status, r.headers, (json.loads(data) if data else None)
    except urllib.error.HTTPError as e:
        data = e.read()
        if e.code in ok:
            return e.code, e.headers, None
        raise SystemExit(f"{method} {path}: {e.code} {data[:500]!r}")

def password_auth(name, password, scope=None):
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "domain": {"id": "default"}, "password": password}}}}}
    if scope:
        body["auth"]["scope"] = scope
    return body

_, h, _ = call("POST", "/auth/tokens", password_auth("admin", os.environ["KS_ADMIN"], {"system": {"all": True}}))
tok = h["X-Subject-Token"]

def find_or_create(kind, plural, name, attrs, extra_query=""):
    _, _, b = call("GET", f"/{plural}?name={name}{extra_query}", token=tok)
    if b[plural]:
        return b[plural][0]
    _, _, b = call("POST", f"/{plural}", {kind: dict(name=name, **attrs)}, token=tok)
    print(f"keystone: created {kind} {name}", file=sys.stderr)
    return b[kind]

roles = {r: find_or_create("role", "roles", r, {}) for r in ("admin", "member", "reader", "service")}
projects = {p: find_or_create("project", "projects", p, {"domain_id": "default", "enabled": True},
                              "&domain_id=default")
            for p in ("admin", "project-a", "project-b", "service")}
passwords = {"admin": os.environ["KS_ADMIN"], "alice": os.environ["KS_ALICE"], "bob": os.environ["KS_BOB"],
             "qga-gateway": os.environ["KS_SERVICE"]}
users = {}
for name, password in passwords.items():
    u = find_or_create("user", "users", name, {"domain_id": "default", "enabled": True, "password": password},
                       "&domain_id=default")
    # An existing user whose password differs (a state dir restored without its passwords file) gets ours.
    try:
        call("POST", "/auth/tokens", password_auth(name, password))
    except SystemExit:
        call("PATCH", f"/users/{u['id']}", {"user": {"password": password}}, token=tok)
        print(f"keystone: reset the password of {name}", file=sys.stderr)
    users[name] = u

def grant(path):
    call("PUT", path, token=tok)

grant(f"/projects/{projects['admin']['id']}/users/{users['admin']['id']}/roles/{roles['admin']['id']}")
grant(f"/domains/default/users/{users['admin']['id']}/roles/{roles['admin']['id']}")
grant(f"/system/users/{users['admin']['id']}/roles/{roles['admin']['id']}")
grant(f"/projects/{projects['project-a']['id']}/users/{users['alice']['id']}/roles/{roles['member']['id']}")
grant(f"/projects/{projects['project-b']['id']}/users/{users['bob']['id']}/roles/{roles['member']['id']}")
grant(f"/projects/{projects['service']['id']}/users/{users['qga-gateway']['id']}/roles/{roles['service']['id']}")

_, _, d = call("GET", "/domains/default", token=tok)
json.dump({
    "authUrl": URL,
    "domain": {"id": d["domain"]["id"], "name": d["domain"]["name"]},
    "projects": {k: v["id"] for k, v in projects.items()},
    "users": {k: {"id": v["id"], "password": passwords[k]} for k, v in users.items()},
    "roles": {k: v["id"] for k, v in roles.items()},
}, sys.stdout, indent=2)
print()
PY
    chmod 0600 "$state/ids.json.new"
    mv -f "$state/ids.json.new" "$state/ids.json"
}

do_start() {
    provisioned || die "not provisioned: run 'bash scripts/keystone.sh provision' first"
    serve
}

serve() {
    local pid
    if pid=$(running_pid); then
        if answers; then log "already running (pid $pid) on $(url)"; return 0; fi
        die "running (pid $pid) but $(url)/v3 does not answer: see $state/uwsgi.log"
    fi
    if curl -s -o /dev/null --max-time 2 "$(url)/" 2>/dev/null; then die "something else answers on $(url)"; fi
    write_config
    if [[ $(port) != "$(cat "$state/port" 2>/dev/null)" ]]; then
        log "port changed to $(port): re-running keystone-manage bootstrap for the catalog's endpoints"
        bootstrap
    fi
    rm -f "$pidfile"
    local uwsgi t0
    uwsgi=$(compgen -G "/usr/bin/uwsgi_python3*" | sort | head -n1)
    [[ -n $uwsgi ]] || die "no /usr/bin/uwsgi_python3*: provision first"
    t0=$(date +%s%N)
    "$uwsgi" --ini "$ini" 9>&-   # not the lock: the daemon would hold it for as long as it runs
    for _ in $(seq 1 600); do
        if answers; then
            log "running (pid $(<"$pidfile")) on $(url), answered $(( ($(date +%s%N) - t0) / 1000000 )) ms after start; token expiration ${expiration} s, cache $cache"
            return 0
        fi
        if [[ -s $pidfile ]] && ! running_pid >/dev/null; then break; fi
        sleep 0.1
    done
    tail -n 30 "$state/uwsgi.log" >&2 || true
    do_stop || true
    die "did not answer on $(url)/v3: see $state/uwsgi.log and $state/keystone.log"
}

do_stop() {
    local pid children c
    if ! pid=$(running_pid); then rm -f "$pidfile"; log "not running"; return 0; fi
    children=$(pgrep -P "$pid" | tr '\n' ' ' || true)
    kill -TERM "$pid"
    for _ in $(seq 1 100); do [[ -e /proc/$pid ]] || break; sleep 0.1; done
    if [[ -e /proc/$pid ]]; then log "uwsgi master $pid still there after 10 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    # Its workers go with it (die-on-term, no-orphans); any one left is killed, if that pid is still a uwsgi.
    for c in $children; do
        for _ in $(seq 1 50); do [[ -e /proc/$c ]] || break; sleep 0.1; done
        if grep -q uwsgi "/proc/$c/cmdline" 2>/dev/null; then kill -KILL "$c" 2>/dev/null || true; fi
    done
    rm -f "$pidfile"
    log "stopped (pid $pid)"
}

do_provision() {
    need_root provision
    local t0 was_running=
    t0=$(date +%s)
    install_packages
    disable_package_service
    id keystone >/dev/null 2>&1 || die "the keystone package did not create the keystone user"
    if running_pid >/dev/null; then was_running=1; fi

    install -d -o keystone -g keystone -m 0750 "$state"
    if [[ ! -s $state/passwords ]]; then
        local u
        umask 077
        for u in admin alice bob qga_gateway; do echo "$u=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"; done >"$state/passwords.new"
        mv -f "$state/passwords.new" "$state/passwords"
        umask 022
    fi
    chmod 0600 "$state/passwords"
    write_config
    install -d -o keystone -g keystone -m 0700 "$state/fernet-keys" "$state/credential-keys"
    manage db_sync
    # Keystone opens more than one sqlite connection within one request (a write committed while another session
    # of the same request still reads): in sqlite's default rollback journal the commit then waits for that reader
    # and fails after 5 s with "database is locked" (seen here on POST /v3/roles). In WAL mode readers do not block
    # a commit. The mode is kept in the database file.
    runuser -u keystone -- sqlite3 "$state/keystone.db" 'PRAGMA journal_mode=WAL;' >/dev/null
    [[ -s $state/fernet-keys/0 ]] || manage fernet_setup --keystone-user keystone --keystone-group keystone
    [[ -s $state/credential-keys/0 ]] || manage credential_setup --keystone-user keystone --keystone-group keystone
    bootstrap
    serve
    seed
    [[ -n $was_running ]] || do_stop
    log "provisioned in $(( $(date +%s) - t0 )) s: $state; ids: bash scripts/keystone.sh ids"
}

do_status() {
    local pid
    if ! pid=$(running_pid); then echo "stopped"; return 3; fi
    if answers; then echo "running (pid $pid) on $(url)"; return 0; fi
    echo "running (pid $pid) but $(url)/v3 does not answer"
    return 1
}

do_env() {
    provisioned || die "not provisioned"
    # shellcheck disable=SC1091
    . "$state/passwords"
    cat <<ENV
export OS_AUTH_URL=$(url)/v3
export OS_IDENTITY_API_VERSION=3
export OS_AUTH_TYPE=password
export OS_INTERFACE=public
export OS_REGION_NAME=RegionOne
export OS_USERNAME=admin
export OS_PASSWORD=$admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_NAME=admin
export OS_PROJECT_DOMAIN_NAME=Default
ENV
}

cmd=${1:-}
case $cmd in
provision) lock; do_provision ;;
start) need_root start; lock; do_start ;;
stop) need_root stop; lock; do_stop ;;
status) do_status ;;
env) do_env ;;
ids)
    provisioned || die "not provisioned"
    # authUrl follows the port (KEYSTONE_PORT, or the last one provisioned or started with).
    KS_URL=$(url) python3 -c 'import json, os, sys
d = json.load(open(sys.argv[1])); d["authUrl"] = os.environ["KS_URL"] + "/v3"; print(json.dumps(d, indent=2))' "$state/ids.json"
    ;;
*) echo "usage: $0 provision|start|stop|status|env|ids" >&2; exit 2 ;;
esac
