#!/usr/bin/env bash
# Removes the iotgw service and package. Keeps the buffer (/var/lib/iotgw: records not yet in Kafka) and the
# config (/etc/iotgw) unless --purge is given.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo systemd/uninstall.sh [options]

Stops and disables the iotgw service, removes /etc/systemd/system/iotgw.service, /opt/iotgw and
/usr/local/bin/iotgw. Keeps /var/lib/iotgw (the buffer: records that may not have reached Kafka yet)
and /etc/iotgw (the config), so a later install carries on where this one stopped.

Options:
  --purge         also delete /var/lib/iotgw, /etc/iotgw and the system user iotgw (buffered records are lost)
  --prefix DIR    the package was installed in DIR instead of /opt/iotgw
  --root DIR      remove from the tree under DIR (as installed with install.sh --root); no systemctl, no userdel
  -h, --help      this help
EOF
}

say() { printf 'iotgw uninstall: %s\n' "$*"; }
die() { printf 'iotgw uninstall: error: %s\n' "$*" >&2; exit 1; }

ROOT=''
PREFIX='/opt/iotgw'
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --purge) PURGE=1; shift ;;
    --prefix) [ $# -ge 2 ] || die '--prefix needs a directory'; PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --root) [ $# -ge 2 ] || die '--root needs a directory'; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, got '$PREFIX'" ;; esac
case "$PREFIX" in / | /opt | /usr | /usr/local | /etc | /var) die "refusing to remove --prefix $PREFIX" ;; esac
if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT does not exist"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" != / ] || ROOT=''
fi
REAL_MACHINE=1
[ -z "$ROOT" ] || REAL_MACHINE=0
if [ "$REAL_MACHINE" = 1 ] && [ "$(id -u)" -ne 0 ]; then
  die 'run as root (sudo systemd/uninstall.sh), or pass --root DIR'
fi

DEST="$ROOT$PREFIX"
UNIT="$ROOT/etc/systemd/system/iotgw.service"
LINK="$ROOT/usr/local/bin/iotgw"
ETC="$ROOT/etc/iotgw"
STATE="$ROOT/var/lib/iotgw"

if [ "$REAL_MACHINE" = 1 ] && [ -d /run/systemd/system ]; then
  if systemctl list-unit-files iotgw.service >/dev/null 2>&1 && [ -n "$(systemctl list-unit-files --no-legend iotgw.service 2>/dev/null)" ]; then
    say 'stopping and disabling iotgw (graceful stop: committed records stay in the buffer)'
    systemctl disable --now iotgw.service >/dev/null 2>&1 || true
  else
    say 'service iotgw is not installed in systemd'
  fi
else
  say 'skipped systemctl stop/disable (--root given or systemd is not PID 1)'
fi

if [ -e "$UNIT" ]; then
  rm -f "$UNIT"
  say "removed $UNIT"
fi
if [ "$REAL_MACHINE" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl reset-failed iotgw.service >/dev/null 2>&1 || true
fi
if [ -L "$LINK" ] || [ -e "$LINK" ]; then
  rm -f "$LINK"
  say "removed $LINK"
fi
for dir in "$DEST" "$DEST.new" "$DEST.old"; do
  if [ -e "$dir" ]; then
    rm -rf "$dir"
    say "removed $dir"
  fi
done

if [ "$PURGE" = 1 ]; then
  for dir in "$STATE" "$ETC"; do
    if [ -e "$dir" ]; then
      rm -rf "$dir"
      say "purged $dir"
    fi
  done
  if [ "$REAL_MACHINE" = 1 ] && getent passwd iotgw >/dev/null; then
    userdel iotgw
    say 'removed the system user iotgw'
  fi
else
  [ ! -e "$STATE" ] || say "kept $STATE (the buffer: records not yet in Kafka); --purge deletes it"
  [ ! -e "$ETC" ] || say "kept $ETC (the config); --purge deletes it"
  [ "$REAL_MACHINE" = 0 ] || ! getent passwd iotgw >/dev/null || say 'kept the system user iotgw (it owns the buffer); --purge removes it'
fi
say 'done'
