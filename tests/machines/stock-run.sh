#!/bin/sh
# Try the README's quick start as a new user would: a fresh privileged container made from a stock
# Debian rootfs (debootstrap minbase plus git and make, nothing else), a clean clone of this checkout's
# HEAD copied in, then the README's commands inside, each timed. Podman runs nested inside, with its
# storage on a fresh host directory (overlay cannot stack on the container's own overlay).
#
# Usage: tests/machines/stock-run.sh bookworm|trixie [command...]   (default: make demo; make test)
# Env:   STOCK_OUT  where logs and timings go (default tests/output/stock-<suite>-<time>)
#        DEBIAN_MIRROR, MAIL_CLIENTS_IMAGE_CACHE as for tests/containers/build-image.sh
# Not part of `make test` (it runs `make test` itself, for 20-40 minutes).
set -eu
suite=${1:?usage: $0 bookworm|trixie [command...]}
shift
case $suite in bookworm|trixie) ;; *) echo "unknown suite: $suite" >&2; exit 2 ;; esac
# Each command timed on its own, said whether it passed or not.
[ "$#" -gt 0 ] || set -- sh -c 'cd /root/mail_clients && for c in demo test; do t0=$(date +%s); make $c; rc=$?;
  echo "stock-run: make $c: exit $rc after $(($(date +%s) - t0)) s"; [ $rc = 0 ] || exit $rc; done'

repo=$(cd "$(dirname "$0")/../.." && pwd)
export CONTAINERS_CONF="$repo/tests/containers/containers.conf"
cache=${MAIL_CLIENTS_IMAGE_CACHE:-/var/cache/middlebury-mail-clients}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
image=localhost/middlebury-mail-clients-stock:$suite
out=${STOCK_OUT:-$repo/tests/output/stock-$suite-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$out"
log() { echo "stock-run: [$(date -u +%H:%M:%S)] $*" | tee -a "$out/times.txt" >&2; }

if ! podman image exists "$image"; then
  work=$(mktemp -d /var/tmp/mail-clients-stock.XXXXXX)
  mkdir -p "$cache/debootstrap-$suite"
  log "debootstrap $suite minbase + git, make"
  debootstrap --variant=minbase --include=git,make,ca-certificates --cache-dir="$cache/debootstrap-$suite" \
    "$suite" "$work/rootfs" "$mirror" >"$out/debootstrap.log" 2>&1 || { tail -30 "$out/debootstrap.log" >&2; exit 1; }
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
    "$mirror" "$suite" "$mirror" "$suite" "$suite" >"$work/rootfs/etc/apt/sources.list"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
  rm -rf "$work"
fi

# A clean clone (what CI gets), and a fresh nested podman store, per run. The clone is cloned again
# into the container's own file system: a bind mount under /root would be hidden by the test
# sandbox's overlay of /root (overlayfs does not show submounts), which no real checkout is.
run=$(mktemp -d /var/tmp/mail-clients-stock-run.XXXXXX)
# shellcheck disable=SC2064  # expand $run now
trap "rm -rf '$run'" EXIT INT TERM
git clone -q --no-local "$repo" "$run/mail_clients"
mkdir -p "$run/containers"
# This machine's network trust (an egress proxy's CA, if any) is the machine's, not ours: hand it on.
extra_ca=""
for ca in /usr/local/share/ca-certificates/*.crt; do
  [ -f "$ca" ] && extra_ca="$extra_ca -v $ca:/usr/local/share/ca-certificates/$(basename "$ca"):ro"
done
log "$suite: running $* (log: $out/run.log)"
start=$(date +%s)
# shellcheck disable=SC2086  # $extra_ca is a list of options
# Its own network namespace (podman's default network): the tests' stand-in servers bind loopback
# addresses and ports, which must not meet this machine's or another run's.
podman run --rm --privileged --name "mail-clients-stock-$suite-$$" \
  -v "$run/mail_clients:/mnt/checkout:ro" -v "$run/containers:/var/lib/containers" \
  $extra_ca --tmpfs /tmp:rw,size=8g,mode=1777 \
  -e PIP_CERT=/etc/ssl/certs/ca-certificates.crt -e LANG=C.UTF-8 \
  "$image" sh -c 'update-ca-certificates >/dev/null 2>&1; cat /etc/debian_version &&
    git clone -q /mnt/checkout /root/mail_clients && exec "$@"' sh "$@" \
  >"$out/run.log" 2>&1 && rc=0 || rc=$?
log "$suite: exit $rc after $(($(date +%s) - start)) s"
grep -E '^stock-run:|^controller:|passed|failed' "$out/run.log" | tail -8 | tee -a "$out/times.txt"
exit "$rc"
