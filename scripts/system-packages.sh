#!/usr/bin/env bash
# Install the Debian packages named on the command line when their command is missing.
# Usage: scripts/system-packages.sh wrk nginx chromium gettext:msgfmt
# An argument is a package whose main command has its name (nginx lives in /usr/sbin), or
# package:command when they differ: `gettext` alone would be found in gettext-base, which many
# machines have, while msgfmt comes only with gettext.
set -euo pipefail
missing=()
for argument in "$@"; do
  package="${argument%%:*}"
  command="${argument#*:}"
  command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-packages: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root." >&2
  exit 1
fi
echo "system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# One update per machine is enough; the lists stay in /var/lib/apt/lists.
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
  apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
