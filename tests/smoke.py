"""Config overrides shared by the training smoke tests: 64² crops, one thread, no workers, CPU."""

TINY_TRAINING = [
    "model.name=gcn_efficientnet_lite0",
    "model.backbone_weights=imagenet",
    "data.crop_size=64",
    "data.eval_size=64",
    "data.workers=0",
    "train.threads=1",
    "optim.name=adamw",
    "optim.lr=0.0003",
    "optim.decoder_lr_mult=10",
    "train.channels_last=false",
    "train.device=cpu",
    "train.amp=none",  # fp32 everywhere: `auto` would follow each CPU's bf16 support
]
# Two constant-rate steps: enough to compare trajectories, cheap enough for every CI run.
TWO_STEPS = [
    "train.epochs=1",
    "train.max_steps_per_epoch=2",
    "schedule.name=constant",
    "schedule.warmup_epochs=0",
]
# One step of a randomly initialised model: for tests of what surrounds training, not of learning.
ONE_RANDOM_STEP = [
    "data.crop_size=64",
    "data.eval_size=64",
    "data.workers=0",
    "data.batch_size=2",
    "train.threads=1",
    "train.device=cpu",
    "train.max_steps_per_epoch=1",
    "model.backbone_weights=random",
    "train.channels_last=false",
    "train.amp=none",
]


def set_flags(overrides: list[str]) -> list[str]:
    """`--set` flags for the CLI from override strings."""
    return [flag for item in overrides for flag in ("--set", item)]
