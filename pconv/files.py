"""Finding image files in folders, with clear errors for unusable folders."""

from __future__ import annotations

from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "list_image_files"]

#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def list_image_files(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` by extension, sorted; hidden files are skipped.

    Raises:
        NotADirectoryError: ``folder`` does not exist or is not a folder.
        PermissionError: ``folder`` (or a subfolder) cannot be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    pattern = "**/*" if recursive else "*"
    try:
        files = [
            path
            for path in folder.glob(pattern)
            if path.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            and path.is_file()
        ]
    except PermissionError as error:
        raise PermissionError(f"cannot read folder {folder}: {error}") from error
    return sorted(files)
