"""Where text generation's text comes from: a user's file or folder of ``.txt`` files."""

from __future__ import annotations

from pathlib import Path

from tasks.common.errors import DataSourceError


def read_text(path: Path) -> str:
    """A text file, or the ``.txt`` files of a folder joined in name order.

    Raises:
        DataSourceError: For a folder without ``.txt`` files or a file that is not UTF-8.
    """
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise DataSourceError(f"{path} holds no .txt files")
    if not all(file.is_file() for file in files):
        raise DataSourceError(f"text_file {path} does not exist")
    try:
        return "".join(file.read_text(encoding="utf-8") for file in files)
    except UnicodeDecodeError as error:
        raise DataSourceError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
