#!/bin/sh
# Installs Seahawks as systemd services: the binary, its system user, its state directory
# (0700), its hardened unit and an example config.
#
#   deploy/install.sh [--binaries DIR] [--root DIR] nester|harvester...
#
#   --binaries DIR  where the built binaries are (default: target/release beside this script)
#   --root DIR      install into DIR instead of / (a staging tree; nothing is started)
#
# Idempotent: run it again to upgrade binaries and units. A config file that exists is never
# overwritten: the new example goes beside it as *.toml.example. Nothing is enabled or started;
# the script prints what to run next.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
binaries="$here/../target/release"
root=""
components=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binaries) binaries=$2; shift 2 ;;
        --root) root=${2%/}; shift 2 ;;
        nester|harvester) components="$components $1"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$components" ] || { echo "install.sh: say what to install: nester, harvester or both (see --help)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "install.sh: run it as root (it creates system users and directories)" >&2; exit 1; }
for c in $components; do
    [ -x "$binaries/$c" ] || {
        echo "install.sh: no $binaries/$c; build it first: cargo build --release -p $c (or pass --binaries DIR)" >&2
        exit 1
    }
done

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" \
    "$root/etc/sysusers.d" "$root/etc/tmpfiles.d"
install -m 0644 "$here/sysusers.d/seahawks.conf" "$root/etc/sysusers.d/seahawks.conf"
install -m 0644 "$here/tmpfiles.d/seahawks.conf" "$root/etc/tmpfiles.d/seahawks.conf"
if [ -n "$root" ]; then
    systemd-sysusers --root="$root" "$root/etc/sysusers.d/seahawks.conf"
    systemd-tmpfiles --root="$root" --create "$root/etc/tmpfiles.d/seahawks.conf"
else
    systemd-sysusers /etc/sysusers.d/seahawks.conf
    systemd-tmpfiles --create /etc/tmpfiles.d/seahawks.conf
fi

for c in $components; do
    # A new file renamed over the old one: a running service keeps its binary until restart.
    install -m 0755 "$binaries/$c" "$root/usr/local/bin/.$c.new"
    mv -f "$root/usr/local/bin/.$c.new" "$root/usr/local/bin/$c"
    install -m 0644 "$here/systemd/$c.service" "$root/etc/systemd/system/$c.service"
    if [ "$c" = harvester ]; then
        for u in seahawks-ssh-host-certificate.path seahawks-ssh-host-certificate.service; do
            install -m 0644 "$here/systemd/$u" "$root/etc/systemd/system/$u"
        done
    fi
    config="$root/etc/seahawks/$c.toml"
    # Readable by the service's group only (resolved in the root that holds it).
    gid=$(grep "^seahawks-$c:" "$root/etc/group" | cut -d: -f3)
    if [ -e "$config" ]; then
        install -m 0640 "$here/$c.example.toml" "$config.example"
        chgrp "$gid" "$config.example"
        echo "kept $config (yours); the new example is $config.example"
    else
        install -m 0640 "$here/$c.example.toml" "$config"
        chgrp "$gid" "$config"
        echo "wrote $config: edit it before starting the service"
    fi
done

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi

echo
echo "next steps:"
for c in $components; do
    case $c in
        nester) cat <<'EOF'
  nester:    runuser -u seahawks-nester -- nester init --data-dir /var/lib/seahawks-nester --name "$(hostname -f)"
             (edit /etc/seahawks/nester.toml, then) systemctl enable --now nester
             tokens for harvesters: the dashboard's Enrollment page, or
             runuser -u seahawks-nester -- nester token create --config /etc/seahawks/nester.toml --site SITE
EOF
        ;;
        harvester) cat <<'EOF'
  harvester: (edit scan.scope and scan.targets in /etc/seahawks/harvester.toml, then)
             runuser -u seahawks-harvester -- harvester enroll --config /etc/seahawks/harvester.toml --token-file -
             systemctl enable --now harvester
             SSH certificates on this box (README "SSH certificates for support engineers"):
             deploy/sshd_config.d/seahawks.conf into /etc/ssh/sshd_config.d/, [ssh] in
             harvester.toml, then systemctl enable --now seahawks-ssh-host-certificate.path
EOF
        ;;
    esac
done
