"""The package version, from installed metadata when available."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("headframe")
except PackageNotFoundError:  # running from a source tree without install
    VERSION = "0.0.0+src"
