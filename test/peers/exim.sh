#!/usr/bin/env bash
# Unpacks Debian's Exim beside the installed Postfix (Debian lets only one MTA be installed, see
# docs/queues.md): exim4-daemon-light and exim4-base are downloaded and `dpkg -x`ed into
# $QTSMTPD_EXIM_ROOT (default /tmp/qtsmtpd-exim), libidn12 is installed and the Debian-exim
# system user is created. Idempotent: does nothing when everything is already there.
# Prints the path of the exim binary on its last line.
set -euo pipefail
root="${QTSMTPD_EXIM_ROOT:-/tmp/qtsmtpd-exim}"
bin="$root/usr/sbin/exim4"

if [ ! -x "$bin" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download exim4-daemon-light exim4-base >/dev/null 2>&1) || {
    apt-get update -qq && (cd "$work" && apt-get download exim4-daemon-light exim4-base >/dev/null)
  }
  mkdir -p "$root.partial"
  for deb in "$work"/*.deb; do dpkg -x "$deb" "$root.partial"; done
  rm -rf "$root" && mv "$root.partial" "$root"
fi
if ! dpkg -s libidn12 >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends libidn12 >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq --no-install-recommends libidn12 >/dev/null
  }
fi
getent passwd Debian-exim >/dev/null || useradd -r -M -s /usr/sbin/nologin Debian-exim
"$bin" -C /dev/null -bV >/dev/null 2>&1
echo "$bin"
