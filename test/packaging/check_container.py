#!/usr/bin/env python3
"""What can be checked of the container files without Docker (README, "Container sidecar").

The compose files parse as YAML and hold what FUSE in a container needs (/dev/fuse, SYS_ADMIN,
the /data bind with rshared propagation for riakfs and a slave or shared one for the app, a
volume for state_dir); the Dockerfile's build stage installs every build and library package of
scripts/setup (the list CI installs); the entry point is valid sh. Exit 0 when all hold, else
one line per problem and exit 1.
"""
import os
import re
import subprocess
import sys

import yaml

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
container = os.path.join(root, "scripts", "container")
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def load(name):
    with open(os.path.join(container, name)) as f:
        return yaml.safe_load(f)


def bind_of(service, target):
    for volume in service.get("volumes", []):
        if isinstance(volume, dict) and volume.get("target") == target:
            return volume
    return None


compose = load("compose.yaml")
services = compose.get("services", {})
for name in ("riak", "riakfs", "app"):
    check(name in services, f"compose.yaml: no service {name}")
riakfs = services.get("riakfs", {})
check("/dev/fuse:/dev/fuse" in riakfs.get("devices", []), "riakfs: /dev/fuse is not passed")
check("SYS_ADMIN" in riakfs.get("cap_add", []), "riakfs: no SYS_ADMIN capability")
data = bind_of(riakfs, "/data")
check(data is not None and data.get("bind", {}).get("propagation") == "rshared",
      "riakfs: /data is not a bind with rshared propagation")
check(any(isinstance(v, str) and v.endswith(":/var/lib/riakfs") for v in riakfs.get("volumes", [])),
      "riakfs: state_dir (/var/lib/riakfs) is not a volume")
check("riak=http://riak:8098" in riakfs.get("environment", {}).get("RIAKFS_OPTIONS", ""),
      "riakfs: RIAKFS_OPTIONS does not name the riak service")
app_data = bind_of(services.get("app", {}), "/data")
check(app_data is not None and
      app_data.get("bind", {}).get("propagation") in ("rslave", "rshared"),
      "app: /data does not receive mounts (propagation rslave or rshared)")
check(services.get("app", {}).get("depends_on", {}).get("riakfs", {}).get("condition") ==
      "service_healthy", "app: does not wait for the mount")

devnode = load("compose.devnode.yaml")
command = devnode.get("services", {}).get("riak", {}).get("command", [])
check(command[:1] == ["riak-devnode"], "compose.devnode.yaml: riak does not run riak-devnode")

# scripts/setup's package groups: "# build", "# libraries", "# tests and benchmarks".
with open(os.path.join(root, "scripts", "setup")) as f:
    setup = f.read()
block = re.search(r"packages=\((.*?)\n\)", setup, re.S)
check(block is not None, "scripts/setup: no packages=( ... ) list")
groups, current = {}, None
for line in (block.group(1) if block else "").splitlines():
    line = line.strip()
    if line.startswith("#"):
        current = line.lstrip("# ").split()[0]
        groups[current] = []
    elif line and current:
        groups[current] += line.split()
needed = set(groups.get("build", [])) | set(groups.get("libraries", []))
check(needed, "scripts/setup: no build or libraries group")

with open(os.path.join(container, "Dockerfile")) as f:
    dockerfile = f.read()
stages = re.split(r"^FROM ", dockerfile, flags=re.M)
check(len(stages) >= 3, "Dockerfile: expected a build stage and a runtime stage")
check(stages[1].startswith("debian:12"), "Dockerfile: the build stage is not Debian 12")
# The words from "apt-get install" to the next "&&": options and package names.
install = re.search(r"apt-get install(.*?)&&", stages[1] if len(stages) > 1 else "", re.S)
installed = set(re.findall(r"(?<![\w-])[a-z0-9][a-z0-9.+-]+", install.group(1))) if install else set()
for package in sorted(needed - installed):
    problems.append(f"Dockerfile: the build stage does not install {package} (scripts/setup does)")

entrypoint = os.path.join(container, "entrypoint.sh")
check(os.access(entrypoint, os.X_OK), "entrypoint.sh is not executable")
syntax = subprocess.run(["sh", "-n", entrypoint], capture_output=True, text=True)
check(syntax.returncode == 0, f"entrypoint.sh: {syntax.stderr.strip()}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
