#!/bin/bash
# Runs inside a container booted by systemd-nspawn from this machine's own /usr (a volatile
# root: every write vanishes with it), as `seahawks-check.service` (tests/tests/e2e/deploy.rs). It
# installs both services with deploy/install.sh, starts them under the real systemd, enrolls
# the harvester, waits for a report in the nester's database, and checks the sandbox the
# processes got. The container exits 0 when all of it worked.
set -euo pipefail
trap 'echo "CHECK FAILED at line $LINENO"; journalctl -u nester -u harvester --no-pager | tail -40; systemctl exit 1' ERR
read -r INGEST WEB CLOSED < /payload/ports
# As an operator's `runuser -u USER --` (the container's /etc has no PAM configuration).
as() { local user=$1; shift; setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"; }

/payload/deploy/install.sh --binaries /payload/bin nester harvester
cat > /etc/seahawks/nester.toml <<TOML
data_dir = "/var/lib/seahawks-nester"
[ingest]
listen = "127.0.0.1:$INGEST"
[web]
listen = "127.0.0.1:$WEB"
TOML
cat > /etc/seahawks/harvester.toml <<TOML
state_dir = "/var/lib/seahawks-harvester"
interval = "2s"
[scan]
scope = ["127.0.0.0/8"]
targets = ["127.0.0.1"]
ports = "$CLOSED"
max_timeout_ms = 500
[wan]
targets = ["127.0.0.1"]
probes = 2
interval_ms = 10
TOML

as seahawks-nester nester init --data-dir /var/lib/seahawks-nester --name localhost </dev/null
systemctl start nester
as seahawks-nester nester token create --config /etc/seahawks/nester.toml --site boot-check 2>/dev/null |
    as seahawks-harvester harvester enroll --config /etc/seahawks/harvester.toml --token-file -
systemctl start harvester

for _ in $(seq 60); do
    if as seahawks-nester nester probe list --config /etc/seahawks/nester.toml | grep -q 'boot-check *online'; then
        break
    fi
    sleep 1
done
as seahawks-nester nester probe list --config /etc/seahawks/nester.toml | grep 'boot-check *online'
echo "REPORT STORED"

# The sandbox as the kernel sees it: the service users, and no capability but CAP_NET_RAW
# (bit 13) for the harvester, none for the nester.
status() { grep "^$2:" "/proc/$(systemctl show -p MainPID --value "$1")/status" | cut -f2; }
for unit in nester harvester; do
    systemctl is-active --quiet "$unit"
    user=$(ps -o user= -p "$(systemctl show -p MainPID --value "$unit")")
    echo "$unit: user $user, CapEff $(status "$unit" CapEff), NoNewPrivs $(status "$unit" NoNewPrivs)"
    [ "$user" = "seahawks-$unit" ]
    [ "$(status "$unit" NoNewPrivs)" = 1 ]
done
[ "$(status nester CapEff)" = 0000000000000000 ]
[ "$(status harvester CapEff)" = 0000000000002000 ]
# State 0700 and the nester's files written with umask 077.
[ "$(stat -c %a /var/lib/seahawks-nester)" = 700 ]
[ "$(stat -c %a /var/lib/seahawks-harvester)" = 700 ]
echo "SANDBOX OK"
ps -eo pcpu,etime,comm --sort=-pcpu | head -8
systemctl exit 0
