import pathspec
from pathspec.util import normalize_file


def test_normalize_file_strips_dot_slash() -> None:
    assert normalize_file("./src/app.py") == "src/app.py"


def test_dot_slash_paths_match() -> None:
    spec = pathspec.PathSpec.from_lines("gitignore", ["src/*.py"])
    assert spec.match_file("./src/app.py")
