"""Tools: benchmarks and the demo."""
