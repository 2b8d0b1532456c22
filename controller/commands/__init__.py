"""One module per command, each with one public function that returns an exit code."""

from ..output import Output

__all__ = ["Output"]
