#!/bin/sh
# Build the local podman images of Debian lab PCs used by molecule, `make demo` and
# `make bench-fleet`. No registry is needed: debootstrap makes a minimal root file system,
# `podman import` turns it into a base image, and the mail clients are installed inside a
# container from that base (installing thunderbird/evolution-data-server straight from
# debootstrap fails: gnome-keyring's postinst cannot run in a bare chroot).
#
# Usage: tests/containers/build-image.sh [bookworm|trixie|bookworm-tb140|all]...   (default: all)
#        bookworm-tb140 is the Debian 12 image with the Thunderbird 140 ESR that Debian 12's main
#        archive still has (a lab PC that never took bookworm-security's 153).
# Env:   MAIL_CLIENTS_IMAGE_BOOKWORM / MAIL_CLIENTS_IMAGE_TRIXIE  image names (a CI that can pull
#          images may point these at its own; if the image exists nothing is built)
#        MAIL_CLIENTS_IMAGE_CACHE  where the debootstrap/apt .deb caches live
#                                  (default /var/cache/middlebury-mail-clients)
#        DEBIAN_MIRROR             default http://deb.debian.org/debian
#        MAIL_CLIENTS_IMAGE_REBUILD=1  rebuild even if the image exists
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${CONTAINERS_CONF:=$here/containers.conf}"
export CONTAINERS_CONF
cache=${MAIL_CLIENTS_IMAGE_CACHE:-/var/cache/middlebury-mail-clients}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# Everything a lab PC needs for the roles and for the real-client checks: the clients,
# EDS + GObject introspection to list sources, dbus for dbus-run-session, sshd/sudo for the
# fleet benchmark, tmux to show mutt in `make demo`.
# dconf-cli: the evolution role compiles the system dconf database with it. No package only a validator
# needs (no Node.js): the molecule lab checks that the roles need none.
packages="mutt neomutt thunderbird evolution-data-server gir1.2-edataserver-1.2 gir1.2-camel-1.2
python3-gi dbus dconf-cli sudo procps openssh-server tmux openssl ca-certificates"
# Images carry this label; a changed package list (or this script's layout) means a rebuild.
layout_version=2
label_key=org.middlebury.mail-clients.packages

# Inside the build container. dpkg without fsync and without docs/man pages: the install is
# IO-bound, and nothing here reads documentation (unsafe-io is removed again afterwards).
install_script='
d=/etc/dpkg/dpkg.cfg.d
echo force-unsafe-io >$d/zz-mail-clients-build
printf "%s\n" "path-exclude=/usr/share/doc/*" "path-include=/usr/share/doc/*/copyright" \
  "path-exclude=/usr/share/man/*" "path-exclude=/usr/share/info/*" >$d/mail-clients-nodoc
apt-get update -q
apt-get install -y -q --no-install-recommends "$@" >/tmp/apt.log 2>&1 || { tail -40 /tmp/apt.log; exit 1; }
rm -f /tmp/apt.log $d/zz-mail-clients-build'

image_name() {
  case $1 in
    bookworm) echo "${MAIL_CLIENTS_IMAGE_BOOKWORM:-localhost/middlebury-mail-clients:bookworm}" ;;
    trixie) echo "${MAIL_CLIENTS_IMAGE_TRIXIE:-localhost/middlebury-mail-clients:trixie}" ;;
    bookworm-tb140) echo "localhost/middlebury-mail-clients:bookworm-tb140" ;;
    *) echo "unknown suite: $1 (bookworm|trixie|bookworm-tb140)" >&2; return 2 ;;
  esac
}

log() { echo "build-image: [$(date -u +%H:%M:%S)] $*" >&2; }

wanted_label() { printf '%s %s' "$layout_version" "$packages" | tr -s ' \n' '  ' | sha256sum | cut -c1-16; }

# An image is current when it exists and carries our label value; an image named by the
# MAIL_CLIENTS_IMAGE_* variables is the caller's and is used as it is.
image_current() {
  podman image exists "$2" || return 1
  [ "$3" = own ] || return 0
  [ "$(podman image inspect --format "{{ index .Config.Labels \"$label_key\" }}" "$2" 2>/dev/null)" = "$(wanted_label)" ]
}

image_owner() {
  case $1 in
    bookworm) [ -n "${MAIL_CLIENTS_IMAGE_BOOKWORM:-}" ] && echo caller || echo own ;;
    trixie) [ -n "${MAIL_CLIENTS_IMAGE_TRIXIE:-}" ] && echo caller || echo own ;;
    *) echo own ;;
  esac
}

build_base() {
  suite=$1 base=$2
  work=$(mktemp -d /var/tmp/mail-clients-rootfs.XXXXXX)
  # shellcheck disable=SC2064  # expand $work now
  trap "rm -rf '$work'" EXIT INT TERM
  mkdir -p "$cache/debootstrap-$suite"
  log "debootstrap $suite (debs cached in $cache/debootstrap-$suite)"
  timeout 1200 debootstrap --variant=minbase --include=python3,ca-certificates \
    --cache-dir="$cache/debootstrap-$suite" "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -30 "$work/debootstrap.log" >&2
    return 1
  }
  # debootstrap writes only "<suite> main": add updates and security so the images carry
  # the same client versions as an updated lab PC.
  cat >"$work/rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
SOURCES
  # No init system in these containers: never let package scripts try to start services.
  printf '#!/bin/sh\nexit 101\n' >"$work/rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$work/rootfs/usr/sbin/policy-rc.d"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*_Packages
  log "podman import $base"
  tar -C "$work/rootfs" -c . | timeout 600 podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$work"
  trap - EXIT INT TERM
}

# The Thunderbird 140 variant: the Debian 12 image with Thunderbird downgraded to the main archive's
# 140 ESR (labelled with that version, so a new pin rebuilds it).
tb140_version=1:140.12.0esr-1~deb12u1
build_tb140() {
  tb_image=$(image_name bookworm-tb140)
  mkdir -p "$cache"
  exec 8>"$cache/build-bookworm-tb140.lock"
  flock -w 3600 8
  # Current when both its base (the Debian 12 image's package list, inherited label) and its pin are.
  if [ "${MAIL_CLIENTS_IMAGE_REBUILD:-0}" != 1 ] && image_current bookworm "$tb_image" own && [ "$(podman image inspect \
      --format "{{ index .Config.Labels \"$label_key-tb\" }}" "$tb_image" 2>/dev/null)" = "$tb140_version" ]; then
    log "$tb_image present"
    return 0
  fi
  build_suite bookworm  # (sets its own $image)
  start=$(date +%s)
  ctr=mail-clients-build-tb140-$$
  podman rm -f "$ctr" >/dev/null 2>&1 || true
  # shellcheck disable=SC2064  # expand $ctr now
  trap "podman rm -f '$ctr' >/dev/null 2>&1 || true" EXIT INT TERM
  log "installing Thunderbird $tb140_version into $tb_image"
  mkdir -p "$cache/apt-bookworm/partial"
  timeout 1800 podman run --name "$ctr" --network host -v "$cache/apt-bookworm:/var/cache/apt/archives" \
    -e DEBIAN_FRONTEND=noninteractive "$(image_name bookworm)" sh -euc \
    'apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends --allow-downgrades \
       "thunderbird=$1" >/tmp/apt.log 2>&1 || { tail -40 /tmp/apt.log; exit 1; }; rm -f /tmp/apt.log' sh "$tb140_version"
  timeout 600 podman commit -q --change "LABEL $label_key-tb=$tb140_version" "$ctr" "$tb_image" >/dev/null
  podman rm "$ctr" >/dev/null
  trap - EXIT INT TERM
  log "$tb_image built in $(($(date +%s) - start)) s"
  exec 8>&-
}

build_suite() {
  suite=$1
  image=$(image_name "$suite")
  # One build per suite at a time (parallel test runs share the caches and the image names).
  mkdir -p "$cache"
  exec 9>"$cache/build-$suite.lock"
  flock -w 3600 9
  if [ "${MAIL_CLIENTS_IMAGE_REBUILD:-0}" != 1 ] && image_current "$suite" "$image" "$(image_owner "$suite")"; then
    log "$image present"
    return 0
  fi
  start=$(date +%s)
  base=localhost/middlebury-mail-clients-base:$suite
  # The base (debootstrap) is reused across package-list changes; REBUILD=1 redoes it too.
  if [ "${MAIL_CLIENTS_IMAGE_REBUILD:-0}" = 1 ] || ! podman image exists "$base"; then
    build_base "$suite" "$base"
  fi
  # apt's downloads go to a host cache dir too, so a rebuild does not fetch them again.
  mkdir -p "$cache/apt-$suite/partial"
  ctr=mail-clients-build-$suite-$$
  podman rm -f "$ctr" >/dev/null 2>&1 || true
  # A failed install must not leave its build container behind.
  # shellcheck disable=SC2064  # expand $ctr now
  trap "podman rm -f '$ctr' >/dev/null 2>&1 || true" EXIT INT TERM
  log "installing the clients into $image"
  # shellcheck disable=SC2086  # word-split the package list on purpose
  timeout 1800 podman run --name "$ctr" --network host \
    -v "$cache/apt-$suite:/var/cache/apt/archives" \
    -e DEBIAN_FRONTEND=noninteractive "$base" \
    sh -euc "$install_script" sh $packages
  log "committing $image"
  timeout 600 podman commit -q --change "LABEL $label_key=$(wanted_label)" \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' "$ctr" "$image" >/dev/null
  podman rm "$ctr" >/dev/null
  trap - EXIT INT TERM
  log "$image built in $(($(date +%s) - start)) s"
  exec 9>&-
}

[ "$#" -gt 0 ] || set -- all
for arg in "$@"; do
  case $arg in
    all) build_suite bookworm; build_suite trixie; build_tb140 ;;
    bookworm-tb140) build_tb140 ;;
    *) build_suite "$arg" ;;
  esac
done
