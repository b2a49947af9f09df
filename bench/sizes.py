"""Sizes on disk: what a directory occupies, and a directory zipped as the original design did."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path


def disk_usage(path: Path) -> int:
    """Bytes allocated to everything under `path` (like `du -s`; hard links counted once).

    Files may vanish while we walk (the tools delete their scratch space): they count as gone.
    """
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(path)]
    while stack:
        top = stack.pop()
        try:
            entries = list(os.scandir(top))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def zip_tool() -> str:
    """How directories get zipped here: Info-ZIP's `zip -r -q`, or Python's zipfile."""
    return "zip -r -q" if shutil.which("zip") else "python zipfile (ZIP_DEFLATED)"


def zip_directory(directory: Path, archive: Path) -> int:
    """Zip `directory` into `archive` the way the original design did; the archive's size."""
    archive.unlink(missing_ok=True)
    if shutil.which("zip"):
        subprocess.run(["zip", "-r", "-q", str(archive), directory.name], cwd=directory.parent,
                       check=True)
    else:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for file in sorted(directory.rglob("*")):
                z.write(file, file.relative_to(directory.parent))
    return archive.stat().st_size


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
