"""Generic IO: atomic writes, verified downloads and safe archive extraction."""
