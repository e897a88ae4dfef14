#!/usr/bin/env bash
# npm run test:fresh: the README's two commands (`npm run demo`, `npm test`) on a freshly
# installed Debian 12, the way a new user meets them.
#
# A `debootstrap --variant=minbase bookworm` root gets only what a user would add by hand:
# Node and npm copied from this host, the host's npm settings and CA bundle, and the host's
# apt sources (so it reaches the same package mirror). A clean clone of this repository's
# committed HEAD goes into a folder only root may enter (as `mktemp -d` makes), and both
# commands run there as root in their own mount and PID namespaces, so every daemon they
# start dies with them and nothing is left mounted. It prints what failed and exits non-zero
# when anything did.
#
# Needs root and debootstrap (installed with apt-get when missing). The pristine minbase root
# is cached as a tarball (AUTOPORT_FRESH_CACHE, default /var/cache/autoport/test-fresh) because
# building it takes minutes and it is the same every time; `--rebuild` makes it anew.
# AUTOPORT_FRESH_KEEP=1 keeps the work folder (root, logs) for a look afterwards.
set -euo pipefail

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
suite=bookworm
cache=${AUTOPORT_FRESH_CACHE:-/var/cache/autoport/test-fresh}
base="$cache/$suite-minbase.tar"
limit=${AUTOPORT_FRESH_TIMEOUT:-3600}

say() { printf '[test:fresh] %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 2
}

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, mounts); run: sudo npm run test:fresh"
command -v unshare >/dev/null || die "needs unshare (util-linux)"
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null ||
    die "apt-get install debootstrap failed; install it by hand"
fi
[[ " $* " == *" --rebuild "* ]] && rm -f "$base"

# The mirror the host's apt uses (deb822 sources first, then one-line sources).
mirror() {
  local m
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
  [[ -n $m ]] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/autoport-fresh.XXXXXX")
cleanup() {
  if [[ ${AUTOPORT_FRESH_KEEP:-} == 1 ]]; then
    say "kept $work"
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
root="$work/root"
mkdir -p "$root"

build_base() {
  say "debootstrap --variant=minbase $suite from $(mirror) (cached afterwards in $base)"
  local tmp="$work/base"
  debootstrap --variant=minbase "$suite" "$tmp" "$(mirror)" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see the end of $work/debootstrap.log (AUTOPORT_FRESH_KEEP=1 keeps it)"
  mkdir -p "$cache"
  tar -C "$tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf --one-file-system "$tmp"
}
[[ -s $base ]] || build_base
tar -C "$root" -xf "$base"

# What a user adds to a fresh machine by hand: Node and npm, npm's settings and CA bundle,
# and apt sources that reach the mirror. Nothing else from the host.
copy_in() { mkdir -p "$root$(dirname "$1")" && cp -a "$1" "$root$1"; }
copy_in "$(readlink -f "$(command -v node)")"
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
copy_in "$npm_dir"
ln -sf "$npm_dir/bin/npm-cli.js" "$root/usr/bin/npm"
ln -sf "$npm_dir/bin/npx-cli.js" "$root/usr/bin/npx"
[[ $node_bin == /usr/bin/node ]] || ln -sf "$node_bin" "$root/usr/bin/node"
for f in /root/.npmrc /etc/npmrc /usr/etc/npmrc /etc/ssl/certs/ca-certificates.crt /etc/resolv.conf; do
  [[ -e $f ]] && copy_in "$f"
done
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
  /etc/apt/apt.conf.d/99*; do
  [[ -f $f ]] && copy_in "$f"
done
# As in any chroot or container image: packages must not start their system services here
# (they would run outside the namespaces' reach); the tests start their own daemons.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"

# A clean clone of what is committed, in a folder only root may enter.
inside=$(mktemp -d "$root/tmp/clone.XXXXXX")
chmod 0700 "$inside"
git clone -q --no-hardlinks "$repo" "$inside/autoport"
clone="/tmp/$(basename "$inside")/autoport"
say "clone of $(git -C "$repo" rev-parse --short HEAD) at $clone inside the fresh root"

# One shell inside the root runs both commands; PID and mount namespaces end everything it
# started (daemons included) and every mount when it exits.
cat >"$root/run-readme.sh" <<EOF
#!/bin/bash
set -u
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
cd "$clone"
echo "== npm run demo"; npm run demo >/demo.log 2>&1; echo \$? >/demo.rc
echo "== npm test"; npm test >/test.log 2>&1; echo \$? >/test.rc
EOF
chmod 0755 "$root/run-readme.sh"
mount --bind /dev "$root/dev" 2>/dev/null || die "cannot bind /dev into the root"
unmount_dev() { umount -l "$root/dev" 2>/dev/null || true; }
trap 'unmount_dev; cleanup' EXIT
mkdir -p "$root/dev/pts" "$root/dev/shm"

say "running the README's commands (bounded at ${limit}s)"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
  CI=true LANG=C.UTF-8 \
  ${NODE_EXTRA_CA_CERTS:+NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS} \
  ${SSL_CERT_FILE:+SSL_CERT_FILE=$SSL_CERT_FILE} \
  ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
  timeout --kill-after=30 "$limit" \
  unshare --mount --pid --fork --propagation private chroot "$root" /run-readme.sh >&2 || true
unmount_dev

status=0
report() {
  local name=$1 log="$root/$2.log" rc
  rc=$(cat "$root/$2.rc" 2>/dev/null || echo 'none (timed out or killed)')
  if [[ $rc == 0 ]]; then
    say "$name: passed"
  else
    status=1
    say "$name: FAILED (exit $rc); last lines of its output:"
    tail -n 25 "$log" 2>/dev/null | sed 's/^/    /' >&2
  fi
}
report 'npm run demo' demo
report 'npm test' test
if [[ -f $root/test.log ]]; then
  grep -E '^# (tests|pass|fail|cancelled|skipped) ' "$root/test.log" | sed 's/^/    /' >&2 || true
  # Node's TAP reporter: a failed test is a "not ok" line; name each one.
  grep -E '^\s*not ok ' "$root/test.log" | sed 's/^/    /' >&2 || true
fi
if [[ ${AUTOPORT_FRESH_KEEP:-} == 1 ]]; then say "logs: $root/demo.log $root/test.log"; fi
exit $status
