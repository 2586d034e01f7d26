"""The installed pconv's version, in a module that imports nothing else of pconv."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pconv")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
