#!/usr/bin/env bash
# Installs what Sallyport needs on Debian or Ubuntu, then its npm dependencies.
#
#   scripts/setup.sh                  # to run the product (npm start)
#   scripts/setup.sh --test           # also what the tests need (Chromium)
#   scripts/setup.sh --with-electron  # also download Electron's binary (needs internet beyond npm)
#
# OS packages are installed only when missing, with apt-get (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
with_electron=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --with-electron) with_electron=1 ;;
    *) echo "setup.sh: unknown option $arg (use --test, --with-electron)" >&2; exit 2 ;;
  esac
done

# Node: the gateway needs 20.19 or newer (Vite 8 and electron-vite set the floor).
if ! command -v node >/dev/null; then
  echo "setup.sh: Node.js 20.19+ is required (https://nodejs.org or your distribution's nodejs package)" >&2
  exit 1
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("setup.sh: Node.js 20.19+ is required, found "+process.version); process.exit(1) }'

packages=()
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null || packages+=(openssh-server)
if [ "$want_test" = 1 ]; then
  [ -x /usr/bin/chromium ] || packages+=(chromium)
  # The TLS tests make a throw-away CA and server certificate with it.
  command -v openssl >/dev/null || packages+=(openssl)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    echo "setup.sh: installing ${packages[*]} with apt-get"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    echo "setup.sh: please install ${packages[*]} (no apt-get here); continuing without them" >&2
  fi
fi

# Electron's postinstall downloads a binary from outside the npm registry; offline machines skip it
# and the product runs as the web console instead.
if [ "$with_electron" = 0 ]; then export ELECTRON_SKIP_BINARY_DOWNLOAD=1; fi
npm ci --no-audit --no-fund

npm run build:console
