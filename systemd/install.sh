#!/usr/bin/env bash
# Installs (or upgrades) iotgw as a systemd service from the checkout this script lives in.
# Idempotent: run it again after `git pull` to upgrade; the config and the buffer are never touched.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo systemd/install.sh [options]

Installs iotgw from this checkout as a systemd service:
  /opt/iotgw                          the package (dist/, runtime node_modules, config/, systemd/)
  /usr/local/bin/iotgw                symlink to the CLI (iotgw config check, iotgw hash-password, ...)
  /etc/iotgw/iotgw.yaml               the commented example config, only if none exists (never overwritten)
  /etc/systemd/system/iotgw.service   the unit; then systemctl daemon-reload and enable --now iotgw
  /var/lib/iotgw                      the SQLite buffer (created by systemd as StateDirectory=)
and creates the system user iotgw (no login shell, group dialout for serial radios).

Run it again to upgrade: the package is replaced, the service restarted, config and buffer kept.

Options:
  --prefix DIR    install the package into DIR instead of /opt/iotgw (the unit is rewritten to match)
  --root DIR      install into the tree under DIR (/opt, /etc, /usr/local/bin, /var/lib below it) without
                  touching this machine: no user, no systemctl (for images and tests)
  --no-start      do not run systemctl (daemon-reload, enable, start/restart); print the commands instead
  --no-build      use the existing dist/ of the checkout instead of running 'npm run build'
  --npm-ci        install runtime dependencies with 'npm ci --omit=dev' in the prefix (compiles better-sqlite3
                  there unless a prebuilt binary can be downloaded: ~10 min on a Pi) instead of copying the
                  checkout's node_modules, built on and for this machine, and pruning dev dependencies
  -h, --help      this help

Needs Node.js >= 20 and, to build better-sqlite3 the first time, build-essential and python3.
EOF
}

say() { printf 'iotgw install: %s\n' "$*"; }
die() { printf 'iotgw install: error: %s\n' "$*" >&2; exit 1; }

ROOT=''
PREFIX='/opt/iotgw'
START=1
BUILD=1
NPM_CI=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die '--prefix needs a directory'; PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --root) [ $# -ge 2 ] || die '--root needs a directory'; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#*=}"; shift ;;
    --no-start) START=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --npm-ci) NPM_CI=1; shift ;;
    --from-checkout) NPM_CI=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, got '$PREFIX'" ;; esac
if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" != / ] || ROOT=''
fi

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT$PREFIX"
ETC="$ROOT/etc/iotgw"
UNIT_DIR="$ROOT/etc/systemd/system"
BIN_DIR="$ROOT/usr/local/bin"
STATE="$ROOT/var/lib/iotgw"
REAL_MACHINE=1
[ -z "$ROOT" ] || REAL_MACHINE=0

# --- Preconditions -------------------------------------------------------------------------------------------
if [ "$REAL_MACHINE" = 1 ] && [ "$(id -u)" -ne 0 ]; then
  die 'run as root (sudo systemd/install.sh), or pass --root DIR to install into a directory tree'
fi
[ -f "$CHECKOUT/package.json" ] || die "no package.json in $CHECKOUT: run the script from an iotgw checkout"
if ! command -v node >/dev/null 2>&1; then
  die 'Node.js >= 20 is required and node is not on PATH. Debian 12 / Raspberry Pi OS bookworm ship Node 18:
  install Node 22 LTS from NodeSource (https://github.com/nodesource/distributions):
    curl -fsSL https://deb.nodesource.com/setup_22.x | sudo bash - && sudo apt-get install -y nodejs
  (Debian 13 trixie: sudo apt-get install nodejs npm). Then run this script again.'
fi
NODE_VERSION="$(node -p 'process.versions.node')"
NODE_MAJOR="${NODE_VERSION%%.*}"
if [ "$NODE_MAJOR" -lt 20 ]; then
  die "Node.js >= 20 is required, found $NODE_VERSION ($(command -v node)). Install Node 22 LTS from NodeSource:
    curl -fsSL https://deb.nodesource.com/setup_22.x | sudo bash - && sudo apt-get install -y nodejs"
fi
command -v npm >/dev/null 2>&1 || die 'npm is missing (it comes with Node.js; Debian: apt-get install npm)'
say "Node.js $NODE_VERSION at $(command -v node)"
case "$(command -v node)" in
  /usr/bin/node | /usr/local/bin/node) ;;
  *) say "warning: the unit runs 'env node' with systemd's PATH (/usr/local/bin:/usr/bin); $(command -v node) is not there" ;;
esac

# --- Build in the checkout ---------------------------------------------------------------------------------------
cd "$CHECKOUT"
if [ "$BUILD" = 1 ]; then
  if [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
    say 'installing build dependencies in the checkout (npm ci; better-sqlite3 may compile for a few minutes)'
    npm ci --no-audit --no-fund
  fi
  say 'building dist/ (npm run build)'
  npm run build --silent
fi
[ -f dist/src/cli.js ] || die "$CHECKOUT/dist/src/cli.js is missing: run 'npm ci && npm run build' (or drop --no-build)"

# --- Package into a staging directory, then swap (an upgrade never leaves a half-copied /opt/iotgw) -------------
STAGE="$DEST.new"
rm -rf "$STAGE"
mkdir -p "$STAGE/dist"
say "copying the package to $STAGE"
cp -a package.json package-lock.json config systemd "$STAGE/"
[ ! -f README.md ] || cp -a README.md "$STAGE/"
[ ! -f LICENSE ] || cp -a LICENSE "$STAGE/"
cp -a dist/src "$STAGE/dist/src"
[ ! -d dist/firmware-sim ] || cp -a dist/firmware-sim "$STAGE/dist/firmware-sim"
chmod 0755 "$STAGE/dist/src/cli.js"
if [ "$NPM_CI" = 1 ]; then
  say 'installing runtime dependencies (npm ci --omit=dev)'
  (cd "$STAGE" && npm ci --omit=dev --no-audit --no-fund)
else
  # The checkout's node_modules was built on and for this machine (same CPU, same Node ABI): copy it and drop the
  # dev dependencies, instead of compiling better-sqlite3 a second time.
  [ -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ] ||
    die "$CHECKOUT/node_modules has no built better-sqlite3: run 'npm ci' in the checkout first, or pass --npm-ci"
  say 'copying runtime dependencies from the checkout (node_modules, then npm prune --omit=dev)'
  cp -a node_modules "$STAGE/node_modules"
  (cd "$STAGE" && npm prune --omit=dev --no-audit --no-fund >/dev/null)
fi
# The service and `sudo iotgw ...` run this code as root or iotgw: whoever owns the checkout must not be able
# to change it afterwards, so the installed copy belongs to root and nobody else may write it.
if [ "$(id -u)" -eq 0 ]; then
  chown -R root:root "$STAGE"
fi
chmod -R go-w "$STAGE"
# A smoke test of the staged copy with this machine's node: loads every module, including the native one.
node -e "require(process.argv[1])" "$STAGE/node_modules/better-sqlite3" ||
  die "better-sqlite3 does not load in $STAGE (built for another Node version?): run again with --npm-ci"
if [ -d "$DEST" ]; then
  say "replacing the previous $DEST"
  rm -rf "$DEST.old"
  mv "$DEST" "$DEST.old"
fi
mv "$STAGE" "$DEST"
rm -rf "$DEST.old"
say "installed the package in $DEST"

mkdir -p "$BIN_DIR"
ln -sfn "$PREFIX/dist/src/cli.js" "$BIN_DIR/iotgw"
say "linked $BIN_DIR/iotgw -> $PREFIX/dist/src/cli.js"

# --- User ----------------------------------------------------------------------------------------------------------
if [ "$REAL_MACHINE" = 1 ]; then
  getent group dialout >/dev/null || groupadd --system dialout
  if getent passwd iotgw >/dev/null; then
    usermod -a -G dialout iotgw
    say 'system user iotgw exists (member of dialout)'
  else
    useradd --system --user-group --groups dialout --home-dir /var/lib/iotgw --no-create-home --shell /usr/sbin/nologin \
      --comment 'iotgw edge gateway' iotgw
    say 'created system user iotgw (no login shell, groups iotgw and dialout)'
  fi
else
  say "skipped creating user iotgw (--root given); on the target: useradd --system --user-group --groups dialout --shell /usr/sbin/nologin iotgw"
fi

# --- Config: only if none exists -----------------------------------------------------------------------------------
mkdir -p "$ETC"
EXISTING_CONFIG=0
if [ -e "$ETC/iotgw.yaml" ]; then
  EXISTING_CONFIG=1
  say "kept the existing $ETC/iotgw.yaml (never overwritten); new keys are documented in $PREFIX/config/iotgw.example.yaml"
else
  # The example leaves buffer.path to the default ($STATE_DIRECTORY/buffer.db for the service). Installed, it
  # names the file, so 'sudo iotgw buffer stats' and the other operator commands, which run outside the unit,
  # find the same buffer as the service.
  sed 's|^  # path: /var/lib/iotgw/buffer.db$|  path: /var/lib/iotgw/buffer.db|' "$DEST/config/iotgw.example.yaml" >"$ETC/iotgw.yaml.new"
  grep -q '^  path: /var/lib/iotgw/buffer.db$' "$ETC/iotgw.yaml.new" || die "the example config has no '# path: /var/lib/iotgw/buffer.db' line to set"
  chmod 0640 "$ETC/iotgw.yaml.new"
  mv "$ETC/iotgw.yaml.new" "$ETC/iotgw.yaml"
  say "installed the commented example config as $ETC/iotgw.yaml. As installed it buffers in /var/lib/iotgw and refuses"
  say "  MQTT clients without an identity: add devices with 'iotgw device add ID --config $ETC/iotgw.yaml' and point"
  say "  kafka.brokers at your cluster, then 'systemctl restart iotgw'"
fi
if [ "$REAL_MACHINE" = 1 ]; then
  chown root:iotgw "$ETC" "$ETC/iotgw.yaml"
  chmod 0750 "$ETC"
fi
CONFIG_OK=1
# Checked as the service will see it: buffer.path defaults to $STATE_DIRECTORY/buffer.db there. The check
# prints "note: ..." lines for what is valid but probably unwanted (anonymous access, an open status page).
if ! STATE_DIRECTORY=/var/lib/iotgw CONFIGURATION_DIRECTORY=/etc/iotgw node "$DEST/dist/src/cli.js" config check --config "$ETC/iotgw.yaml"; then
  CONFIG_OK=0
  if [ "$EXISTING_CONFIG" = 1 ]; then
    say "your $ETC/iotgw.yaml does not work with this version: change what is listed above (this script does not"
    say "  edit it), check it with 'iotgw config check --config $ETC/iotgw.yaml', then 'systemctl restart iotgw'"
  else
    say "warning: $ETC/iotgw.yaml does not pass 'iotgw config check' (above); the service would exit with code 78"
  fi
fi

# --- State directory (systemd creates and owns it through StateDirectory=; created here so it exists at once) ------
mkdir -p "$STATE"
chmod 0750 "$STATE"
[ "$REAL_MACHINE" = 0 ] || chown iotgw:iotgw "$STATE"

# --- Unit -------------------------------------------------------------------------------------------------------
mkdir -p "$UNIT_DIR"
if [ "$PREFIX" = /opt/iotgw ]; then
  install -m 0644 "$DEST/systemd/iotgw.service" "$UNIT_DIR/iotgw.service"
else
  sed "s#/opt/iotgw#$PREFIX#g" "$DEST/systemd/iotgw.service" >"$UNIT_DIR/iotgw.service"
  chmod 0644 "$UNIT_DIR/iotgw.service"
fi
say "installed $UNIT_DIR/iotgw.service"

# --- systemctl --------------------------------------------------------------------------------------------------
SKIP_REASON=''
if [ "$REAL_MACHINE" = 0 ]; then
  SKIP_REASON='--root given'
elif [ "$START" = 0 ]; then
  SKIP_REASON='--no-start given'
elif [ ! -d /run/systemd/system ]; then
  SKIP_REASON='systemd is not running as PID 1 here (container or chroot)'
elif [ "$CONFIG_OK" = 0 ]; then
  SKIP_REASON="the config does not pass the check: fix $ETC/iotgw.yaml first"
fi
if [ -n "$SKIP_REASON" ]; then
  say "skipped systemctl ($SKIP_REASON); to start the service run:"
  say '  systemctl daemon-reload && systemctl enable --now iotgw'
else
  systemctl daemon-reload
  systemctl enable iotgw.service >/dev/null 2>&1
  if systemctl is-active --quiet iotgw.service; then
    say 'restarting iotgw (upgrade): it stops gracefully, buffered records stay in /var/lib/iotgw'
    systemctl restart iotgw.service
  else
    say 'starting iotgw'
    systemctl start iotgw.service
  fi
  say "iotgw is $(systemctl is-active iotgw.service): systemctl status iotgw; journalctl -u iotgw -f"
fi
say 'done'
