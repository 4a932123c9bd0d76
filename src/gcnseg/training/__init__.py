"""Training: the run, the epoch loop, losses, LR schedules, DDP helpers and torchrun launch."""
