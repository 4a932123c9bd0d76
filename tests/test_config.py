from __future__ import annotations

import pytest

from gcnseg.config import DataConfig, OptimConfig, TrainConfig, load_config, shipped_configs
from gcnseg.errors import GcnsegError


def test_shipped_config_and_typed_overrides() -> None:
    assert "pets_gcn_lite0" in shipped_configs()
    cfg = load_config(
        "pets_gcn_lite0",
        [
            "optim.lr=0.02",
            "train.epochs=3",
            "train.channels_last=false",
            "data.max_side=600",
            "model.kernel_size=none",
        ],
    )
    assert cfg.optim.lr == 0.02 and isinstance(cfg.train.epochs, int) and cfg.train.epochs == 3
    assert cfg.train.channels_last is False
    assert cfg.data.max_side == 600
    assert cfg.model.kernel_size is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown setting optim.lrr"),
        ("nope.x=1", "unknown config section"),
        ("train.epochs=many", "train.epochs"),
        ("optim.name=rmsprop", "not one of"),
        ("train.epochs", "section.key=value"),
        ("data.crop_size=8", "crop_size"),
    ],
)
def test_bad_overrides_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(GcnsegError, match=message):
        load_config("pets_gcn_lite0", [override])


def test_yaml_file(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: gcn_resnet18\ntrain:\n  amp: bf16\n")
    cfg = load_config(path)
    assert cfg.model.name == "gcn_resnet18" and cfg.train.amp == "bf16"
    with pytest.raises(GcnsegError, match="config not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "data.batch_size: 0 must be >= 1"),
        ("data.batch_size=true", "data.batch_size: True is not an int"),
        ("data.eval_batch_size=-2", "data.eval_batch_size"),
        ("data.workers=-1", "data.workers: -1 must be >= 0"),
        ("data.test_fraction=1", "data.test_fraction"),
        ("data.val_fraction=-0.1", "data.val_fraction"),
        ("data.eval_size=16", "data.eval_size: 16 must be >= 32"),
        ("data.scale_min=0", "data.scale_min"),
        ("data.scale_max=0.2", "data.scale_max: 0.2 must be >= data.scale_min"),
        ("data.color_jitter=-1", "data.color_jitter"),
        ("data.class_crops=1.5", "data.class_crops: 1.5 must be in [0, 1]"),
        ("data.max_side=0", "data.max_side"),
        ("data.root=''", "data.root"),
        ("model.kernel_size=4", "model.kernel_size: 4 must be odd"),
        ("model.kernel_size=0", "model.kernel_size"),
        ("model.decoder_width=-4", "model.decoder_width: -4 must be >= 1"),
        ("model.freeze_bn=1", "model.freeze_bn: 1 is not a boolean"),
        ("optim.lr=-0.1", "optim.lr: -0.1 must be > 0"),
        ("optim.lr=0", "optim.lr: 0.0 must be > 0"),
        ("optim.lr=nan", "optim.lr: 'nan' is not a finite number"),
        ("optim.lr=.inf", "optim.lr"),
        ("optim.momentum=1", "optim.momentum"),
        ("optim.weight_decay=-1e-4", "optim.weight_decay"),
        ("optim.grad_clip=-5", "optim.grad_clip: -5.0 must be > 0"),
        ("optim.decoder_lr_mult=0", "optim.decoder_lr_mult"),
        ("schedule.factor=1.5", "schedule.factor: 1.5 must be in (0, 1)"),
        ("schedule.factor=0", "schedule.factor"),
        ("schedule.warmup_epochs=-1", "schedule.warmup_epochs"),
        ("schedule.patience=-1", "schedule.patience"),
        ("schedule.power=0", "schedule.power"),
        ("schedule.min_lr=-1", "schedule.min_lr"),
        ("train.epochs=0", "train.epochs: 0 must be >= 1"),
        ("train.epochs=-3", "train.epochs"),
        ("train.epochs=2.5", "train.epochs: 2.5 is not an int"),
        ("train.dice_weight=-0.5", "train.dice_weight"),
        ("train.ohem_threshold=0", "train.ohem_threshold: 0.0 must be in (0, 1] or none"),
        ("train.ohem_threshold=1.5", "train.ohem_threshold"),
        ("model.refine=half", "model.refine: 'half' must be full or quarter"),
        ("train.compile=maybe", "train.compile: 'maybe' is not a boolean"),
        ("train.name=../elsewhere", "train.name"),
        ("train.threads=0", "train.threads"),
        ("train.max_steps_per_epoch=0", "train.max_steps_per_epoch"),
        ("train.time_budget_min=-1", "train.time_budget_min"),
        ("train.seed=-1", "train.seed"),
        ("train.seed=99999999999999999999999", "train.seed: 99999999999999999999999 must be in"),
        ("data.val_fraction=0", "data.val_fraction: 0.0 must be in (0, 1): training picks best.pt"),
        ("optim.lr=[", "optim.lr: '[' is not a plain YAML value"),
        (
            'optim.lr=!!python/object/apply:os.system ["true"]',
            "optim.lr: '!!python/object/apply:os.system",
        ),
        ("optim.grad_clip={a: 1, a: 2}", "optim.grad_clip: '{a: 1, a: 2}': key 'a' appears twice"),
    ],
)
def test_out_of_range_settings_name_their_key(override: str, message: str) -> None:
    with pytest.raises(GcnsegError) as exc:
        load_config("pets_gcn_lite0", [override])
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_saved_config_keeps_the_decoder_it_was_trained_with() -> None:
    """Models saved before `model.refine` existed ran the paper's full-resolution decoder."""
    from gcnseg.config import Config, config_from_dict, saved_config_from_dict

    saved = Config().to_dict()
    del saved["model"]["refine"]
    assert saved_config_from_dict(saved).model.refine == "full"
    saved["model"]["refine"] = "quarter"
    assert saved_config_from_dict(saved).model.refine == "quarter"
    assert config_from_dict({}).model.refine == Config().model.refine  # a user's: the default
    with pytest.raises(GcnsegError, match="unknown config section"):
        saved_config_from_dict({"modle": {}})


def test_sections_built_in_python_are_checked_too() -> None:
    with pytest.raises(GcnsegError, match=r"data\.batch_size: True is not an int"):
        DataConfig(batch_size=True)
    with pytest.raises(GcnsegError, match=r"optim\.grad_clip"):
        OptimConfig(grad_clip=-1.0)
    with pytest.raises(GcnsegError, match=r"train\.channels_last: 'yes' is not a bool"):
        TrainConfig(channels_last="yes")
    assert DataConfig(test_fraction=0).test_fraction == 0  # an int is a fine float


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"optim:\n  lr: 0.1\n  name: \xff\xfe\n", "not a UTF-8 text file"),
        (b"optim: 5\n", "optim: must be a mapping"),
        (b"- a\n- b\n", "must be a mapping of sections"),
    ],
    ids=["latin-1", "section-not-mapping", "list"],
)
def test_bad_yaml_files_are_one_line(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(GcnsegError, match=message) as exc:
        load_config(path)
    assert "\n" not in str(exc.value)


def test_an_override_never_runs_python(tmp_path, monkeypatch) -> None:
    """Only plain values are read: a Python tag is refused, not called."""
    monkeypatch.chdir(tmp_path)
    tag = "!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path [ran]]"
    with pytest.raises(GcnsegError, match=r"^optim\.lr: "):
        load_config("pets_gcn_lite0", [f"optim.lr={tag}"])
    assert not (tmp_path / "ran").exists()


def test_a_key_twice_in_a_config_file_names_the_file_and_key(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.1\n  momentum: 0.8\n  lr: 0.001\n")
    with pytest.raises(GcnsegError) as exc:
        load_config(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: key 'lr' appears twice (lines 2 and 4)")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("names", "weights"),
    [
        (["background", "cat", "dog"], "none"),
        ([f"class{i}" for i in range(11)], "sqrt_median_frequency"),
    ],
    ids=["three-classes", "eleven-classes"],
)
def test_init_starts_from_the_measured_recipe(tmp_path, names: list[str], weights: str) -> None:
    """`gcnseg init` writes pets_default's recipe (not the seed-style default), sizes fitted to
    the frames, and class weights only where there are more classes than pets' three."""
    import yaml

    from gcnseg.classes import ClassSet
    from gcnseg.config import config_from_dict, starter_config
    from gcnseg.data.sizes import FittedSizes

    text = starter_config(
        tmp_path, ClassSet.from_dict({"names": names}), 9, FittedSizes(480, 360, 352, 480)
    )
    written = config_from_dict(yaml.safe_load(text))
    recipe = load_config("pets_default")
    assert (written.model, written.optim, written.schedule) == (
        recipe.model,
        recipe.optim,
        recipe.schedule,
    )
    assert (written.data.crop_size, written.data.eval_size) == (352, 480)
    assert written.train.class_weights == weights
    assert written.train.dice_weight == recipe.train.dice_weight == 0.5
    assert written.train.time_budget_min == recipe.train.time_budget_min
    assert "45 minutes" in text and ("weighs rare classes up" in text) == (weights != "none")


@pytest.mark.parametrize(
    ("layout", "recipe"), [("camvid", "camvid_default"), ("oxford-pets", "pets_default")]
)
def test_init_writes_the_recipe_measured_on_a_known_layout(
    tmp_path, layout: str, recipe: str
) -> None:
    """On CamVid or Oxford-IIIT Pet the measured recipe is written as it is: its sizes and class
    weights were chosen on that data, so neither is refitted."""
    import yaml

    from gcnseg.classes import ClassSet
    from gcnseg.config import config_from_dict, starter_config
    from gcnseg.data.sizes import FittedSizes

    classes = ClassSet.from_dict({"names": [f"class{i}" for i in range(11)]})
    text = starter_config(tmp_path, classes, 9, FittedSizes(480, 360, 352, 480), layout)
    expected = load_config(recipe)
    expected.data.root = str(tmp_path)
    assert config_from_dict(yaml.safe_load(text)) == expected
    assert f"measured on this dataset ({recipe})" in text
