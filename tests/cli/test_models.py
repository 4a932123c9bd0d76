"""`gcnseg models`: the table of models."""

from __future__ import annotations

from gcnseg.cli import main


def test_models_lists_gflops_and_offline_weights(capsys) -> None:
    assert main(["models", "--size", "64", "--pattern", "gcn*_efficientnet_lite0"]) == 0
    out = capsys.readouterr().out.split("\n\n")[0].splitlines()  # the packaged table follows
    rows = [line.split() for line in out[2:]]
    assert [r[0] for r in rows] == ["gcn_efficientnet_lite0", "gcn_k1_efficientnet_lite0"]
    gflops = {r[0]: float(r[3]) for r in rows}
    assert gflops["gcn_efficientnet_lite0"] > gflops["gcn_k1_efficientnet_lite0"] > 0
    assert all(r[4] == "yes" for r in rows)


def test_packaged_models_are_listed_with_their_data(capsys) -> None:
    from gcnseg.source import packaged_models

    assert main(["models", "--packaged"]) == 0
    out = capsys.readouterr().out
    for name in packaged_models():
        assert name in out
    assert "gcn_efficientnet_lite2" in out and "Oxford-IIIT Pet: background, cat, dog" in out
