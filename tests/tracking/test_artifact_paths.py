"""A run's artifact layout: files and folders never share a path."""

from __future__ import annotations

from emstrack._tracking.artifact_paths import ArtifactPaths


class TestClaims:
    def test_free_paths_are_kept(self):
        """Paths that do not clash are taken as given."""
        paths = ArtifactPaths()
        assert paths.claim("results.csv") == "results.csv"
        assert paths.claim("plots/day1.png") == "plots/day1.png"
        assert paths.claim("plots/day2.png") == "plots/day2.png"

    def test_file_where_a_folder_is_renamed(self):
        """A file at a path already used as a folder gets a new flat name."""
        paths = ArtifactPaths()
        paths.claim("plots/day1.png")
        assert paths.claim("plots") == "plots~2"

    def test_file_under_a_file_is_renamed(self):
        """A file below a path already used as a file gets a new flat name, keeping its suffix."""
        paths = ArtifactPaths()
        paths.claim("a")
        assert paths.claim("a/b.csv") == "a~b~2.csv"

    def test_same_file_again_overwrites(self):
        """Logging the same file path twice is an overwrite, not a clash."""
        paths = ArtifactPaths()
        assert paths.claim("config.json") == "config.json"
        assert paths.claim("config.json") == "config.json"

    def test_folders_added_whole_take_their_paths(self):
        """Files recorded with add() block clashing claims too."""
        paths = ArtifactPaths()
        paths.add("out/results.csv")
        assert paths.claim("out") == "out~2"
