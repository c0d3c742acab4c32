#!/usr/bin/env bash
# What the test run needs from the system: PostgreSQL's server (unless QISTAS_TEST_POSTGRES_URL
# names one), Debian's Chromium for the browser tests, and fonts with Arabic glyphs.
# Installs what is missing when it can (root, with apt-get); otherwise names it and fails.
set -euo pipefail
need=()
if [ -z "${QISTAS_TEST_POSTGRES_URL:-}" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
fi
[ -x "${QISTAS_TEST_CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
fc-list :lang=ar 2>/dev/null | grep -q . || need+=(fonts-dejavu-core fonts-noto-core)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing what the tests need: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  exit 0
fi
echo "the tests need ${need[*]}: install them with \`sudo apt-get install ${need[*]}\` (Debian)," >&2
echo "or set QISTAS_TEST_POSTGRES_URL to a PostgreSQL server the tests may create databases on" >&2
exit 1
