"""Engine: losses, metrics, the training loop, evaluation, prediction, export and benchmarks."""
