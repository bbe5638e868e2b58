#!/usr/bin/env python3
"""Fails when a process of this test run wrote a sanitizer report (test/sanitizers/meson.build).

Every report in REPORTS_DIR is printed and then moved into REPORTS_DIR/checked/, so that the
next run starts clean while the files stay there to look at.
"""
import os
import sys

reports_dir = sys.argv[1]
checked = os.path.join(reports_dir, "checked")
reports = sorted(
    name for name in os.listdir(reports_dir) if os.path.isfile(os.path.join(reports_dir, name))
)
for name in reports:
    path = os.path.join(reports_dir, name)
    with open(path, errors="replace") as f:
        text = f.read()
    print(f"==== {name}\n{text}")
    os.makedirs(checked, exist_ok=True)
    os.replace(path, os.path.join(checked, name))
if reports:
    print(f"{len(reports)} sanitizer report(s); they are kept in {checked}")
    sys.exit(1)
print("no sanitizer reports")
