"""isackit: integrated sensing and communication (ISAC) and radio positioning under hardware
impairments, in PyTorch.

Layers (data flows down, never back up): geometry → impairments → signals → estimators →
bounds → learning → systems → experiments → cli.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("isackit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
