#!/usr/bin/env python3
"""Kill a record writer at random moments and read every dataset of what it leaves with h5py.

Usage: python3 scripts/record-crash-stress.py <test binary> [files] [seed]
  <test binary>: .build/debug/NASLabPackageTests.xctest (after `swift build --build-tests`)
Each file gets three writer runs (the test binary's RecordsTests/testCrashChildWriter, which
appends candidates, epochs, searcher state and best weights in a tight loop, resuming the
file), each SIGKILLed after 0.5–2 s. Prints every unreadable file and "unreadable N of M".
See docs/records.md (Crash safety).
"""
import os, random, signal, subprocess, sys, tempfile, time

import h5py

binary = sys.argv[1]
files = int(sys.argv[2]) if len(sys.argv) > 2 else 40
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
directory = tempfile.mkdtemp(prefix="naslab-crash-")


def read_everything(path):
    with h5py.File(path, "r") as f:
        def read(name, obj):
            if isinstance(obj, h5py.Dataset):
                obj[()]
            dict(obj.attrs)
        f.visititems(read)
        dict(f.attrs)


unreadable = 0
for n in range(files):
    path = os.path.join(directory, f"r{n}.h5")
    for kill in range(3):
        child = subprocess.Popen([binary, "RecordsTests.RecordsTests/testCrashChildWriter"],
                                 env=dict(os.environ, NASLAB_RECORDS_CRASH_CHILD=path),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5 + 1.5 * rng.random())
        child.send_signal(signal.SIGKILL)
        child.wait()
        try:
            read_everything(path)
        except Exception as error:  # noqa: BLE001 - any failure to read counts
            unreadable += 1
            print(f"file {n}, after kill {kill + 1}: {error!r}")
            break
print(f"unreadable {unreadable} of {files}")
