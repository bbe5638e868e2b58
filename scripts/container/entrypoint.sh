#!/bin/sh
# The riakfs container's entry point: riakfs in the foreground (-f), so the container lives
# exactly as long as the mount; SIGTERM (docker stop) unmounts cleanly. With arguments, runs
# them instead (e.g. `riak-devnode --listen 0.0.0.0:8098 --data /var/lib/devnode`).
set -eu
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
mkdir -p "$RIAKFS_SOURCE" "$RIAKFS_MOUNTPOINT"
# A dead mount left by a killed container would answer ENOTCONN: detach it first.
fusermount3 -uz "$RIAKFS_MOUNTPOINT" 2>/dev/null || true
exec riakfs "$RIAKFS_SOURCE" "$RIAKFS_MOUNTPOINT" -f -o "$RIAKFS_OPTIONS"
