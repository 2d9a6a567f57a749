"""The layout of one run's artifacts: no file and folder may share a path.

An artifact store is a file tree: after ``a`` was logged as a file, ``a/b`` cannot be written,
and the other way round; a run holding both could never be completed. A later clashing path is
renamed instead (``a~b~2.csv``), and the caller reports it.
"""

from __future__ import annotations

from pathlib import PurePosixPath


class ArtifactPaths:
    """Paths already taken in one run's artifact folder."""

    def __init__(self) -> None:
        self._files: set[str] = set()
        self._folders: set[str] = set()

    def claim(self, relative: str) -> str:
        """Take ``relative`` for a file, or the first free renamed path if it clashes."""
        candidate, number = relative, 1
        while self._clashes(candidate):
            number += 1
            flat = PurePosixPath(relative.replace("/", "~"))
            candidate = f"{flat.stem}~{number}{flat.suffix}"
        self.add(candidate)
        return candidate

    def add(self, relative: str) -> None:
        """Record a file at ``relative`` (its parent folders become taken as folders)."""
        self._files.add(relative)
        parts = relative.split("/")
        self._folders.update("/".join(parts[:i]) for i in range(1, len(parts)))

    def _clashes(self, relative: str) -> bool:
        parts = relative.split("/")
        return relative in self._folders or any(
            "/".join(parts[:i]) in self._files for i in range(1, len(parts))
        )
