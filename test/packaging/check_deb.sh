#!/usr/bin/env bash
# scripts/build-deb packs this build (RIAKFS_DEB_BUILDDIR) into a .deb; its contents and control
# fields are checked with dpkg-deb: the binaries, the units, the man pages, the examples, and
# the service unit's ExecStart at the packaged binary.
set -euo pipefail
source_root=$1
build_root=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

deb=$(RIAKFS_DEB_BUILDDIR="$build_root" "$source_root/scripts/build-deb" "$out")
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
status=0
for path in ./usr/bin/riakfs ./usr/bin/riakfsctl ./usr/bin/riak-devnode \
    ./usr/lib/systemd/system/riakfs@.service \
    ./usr/share/man/man8/riakfs.8.gz ./usr/share/man/man8/riakfsctl.8.gz \
    ./usr/share/man/man1/riak-devnode.1.gz \
    ./usr/share/doc/riakfs/examples/srv-data.mount \
    ./usr/share/doc/riakfs/examples/riakfs.env.example \
    ./usr/share/doc/riakfs/examples/riakfs.conf.example; do
  if ! grep -qx "$path" <<<"$contents"; then
    echo "missing from the package: $path"
    status=1
  fi
done
# Nothing of the test build (test binaries, helpers) and nothing outside /usr.
if grep -v '^\./usr/' <<<"$contents" | grep -qv '^\./$'; then
  echo "outside /usr:"; grep -v '^\./usr/' <<<"$contents" | grep -v '^\./$'
  status=1
fi
# The test executables are DIR_tests (test/meson.build); the test helpers riakfs-it-slowfs and
# riakfs-test-faults.
if grep -qE '_tests$|riakfs-it-|riakfs-test-faults' <<<"$contents"; then
  echo "test binaries in the package"; status=1
fi
for field in Package Version Architecture Depends Description; do
  # Not `| grep -q .`: grep ends at the first line, and with pipefail the SIGPIPE dpkg-deb
  # then gets on a multi-line field (Description) made the field look empty now and then.
  if [ -z "$(dpkg-deb -f "$deb" "$field")" ]; then
    echo "control field $field is empty"; status=1
  fi
done
[ "$(dpkg-deb -f "$deb" Package)" = riakfs ] || { echo "Package is not riakfs"; status=1; }
unit=$(mktemp -d)
dpkg-deb -x "$deb" "$unit"
if ! grep -q '^ExecStart=/usr/bin/riakfs ' "$unit/usr/lib/systemd/system/riakfs@.service"; then
  echo "the packaged service does not run /usr/bin/riakfs:"
  grep ExecStart "$unit/usr/lib/systemd/system/riakfs@.service"
  status=1
fi
if [ ! -x "$unit/usr/bin/riakfs" ] || ! "$unit/usr/bin/riakfs" --version | grep -q '^riakfs '; then
  echo "the packaged riakfs does not run"; status=1
fi
rm -rf "$unit"
exit $status
