"""The ``positioning`` experiment plug-in (S4, seed 004): tiny runs, model store keying, summary, figures."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from isackit.experiments.registry import resolve_spec
from isackit.experiments.units import WorkUnit, aggregate_rows

TINY = [("training.hidden", 8), ("training.depth", 2), ("training.steps", 3), ("training.batch", 32),
        ("trials", 20), ("chunk", 20), ("evaluation.bound_angles", 5), ("evaluation.power_angles", 11),
        ("evaluation.ml_grid", 64)]


@pytest.fixture(autouse=True)
def model_cache(tmp_path, monkeypatch):
    """Every test gets its own model cache (and no model from memory of an earlier test)."""
    from isackit.experiments.plugins import positioning as P

    monkeypatch.setenv("ISACKIT_MODEL_CACHE", str(tmp_path / "cache"))
    P._STORES.clear()
    yield tmp_path / "cache"
    P._STORES.clear()


def _spec(*extra):
    return resolve_spec("positioning", quick=True, overrides=TINY + list(extra))


def _store_files(root, name):
    return sorted(p.parent.name for p in (root / "positioning" / name).glob("*/model.json"))


def test_positioning_experiment_tiny(model_cache):
    spec = _spec(("evaluation.snr_db", [10.0]), ("training.snr_db", [10.0]), ("evaluation.impairments", ["coupling"]),
                 ("evaluation.spacing_stds", [0.01]), ("evaluation.zetas", [-0.5]),
                 ("evaluation.pattern_step_deg", 90.0))
    exp = spec.experiment()
    pts = exp.points(spec.config)
    assert [p["panel"] for p in pts] == ["pattern"] * 3 + ["snr", "sigma", "zeta"]
    result = exp.run_unit(spec.config, WorkUnit(3, pts[3], 0, 20, 11), torch.device("cpu"))
    agg = aggregate_rows(result.rows)
    # the run folder learns which model files produced the rows
    assert sorted(a["name"] for a in result.artifacts) == ["aod", "position"]
    for a in result.artifacts:
        assert Path(a["path"]).is_file() and len(a["sha256"]) == 64 and a["key"] in a["path"]
    for metric in ("aod_rmse_deg_bs1", "aod_rmse_deg_bs2", "position_rmse_m"):
        for method in ("benchmark", "learned", "MCRB (benchmark)"):
            assert math.isfinite(agg[(method, metric)][0])
    for name in ("CRB (benchmark)", "CRB (learned)"):
        assert agg[(name, "aod_rmse_deg_bs1")][2] == "bound"
    assert agg[("PEB (learned)", "position_rmse_m")][2] == "bound"
    # trained once, stored, and reused (the pattern panel uses the same AoD model)
    assert len(_store_files(model_cache, "aod")) == 1 and len(_store_files(model_cache, "position")) == 1
    rows2 = exp.run_unit(spec.config, WorkUnit(0, pts[0], 0, 1, 12), torch.device("cpu")).rows
    assert {r.metric for r in rows2} == {"beam_gain_bs1", "beam_gain_bs2"}
    assert len(_store_files(model_cache, "aod")) == 1


def test_a_model_for_another_impairment_is_never_reused(model_cache):
    """Issue 13 item 6: the model key holds the scenario (impairment, σ_λ, ζ) and the training settings."""
    from isackit.experiments.plugins import positioning as P

    cfg = _spec().config
    keys = {}
    for imp, sigma, zeta in (("none", None, None), ("spacing", None, None), ("spacing", 0.02, None),
                             ("coupling", None, None), ("coupling", None, -0.5)):
        sc = P.scenario_of(cfg, imp, sigma, zeta)
        _, recs = P.seed_model(cfg, "aod", sc, 20.0)
        keys[(imp, sigma, zeta)] = recs[0]["key"]
        assert recs[0]["sha256"] and recs[0]["path"].endswith("weights.safetensors")
    assert len(set(keys.values())) == len(keys)
    _, recs = P.seed_model(_spec(("training.lr", 2e-3)).config, "aod", P.scenario_of(cfg, "none"), 20.0)
    assert recs[0]["key"] != keys[("none", None, None)]
    _, recs = P.seed_model(_spec(("seed", 5)).config, "aod", P.scenario_of(cfg, "none"), 20.0)
    assert recs[0]["key"] != keys[("none", None, None)]


def test_damaged_cached_model_is_retrained_with_a_warning(model_cache):
    from isackit.experiments.plugins import positioning as P

    cfg = _spec().config
    sc = P.scenario_of(cfg, "none")
    model, (rec,) = P.seed_model(cfg, "aod", sc, 20.0)
    w = torch.nn.utils.parameters_to_vector(model.parameters()).clone()
    path = rec["path"]
    with open(path, "r+b") as fh:
        fh.truncate(100)
    P._STORES.clear()
    with pytest.warns(RuntimeWarning, match="damaged"):
        again, (rec2,) = P.seed_model(cfg, "aod", sc, 20.0)
    assert rec2 == rec                                      # retrained to the same file
    assert torch.equal(torch.nn.utils.parameters_to_vector(again.parameters()), w)


def test_positioning_experiment_hybrid_decoder_tiny(model_cache):
    """``decoder = "hybrid"``: seed model trained first, then a hybrid model stored under its own key."""
    spec = _spec(("evaluation.snr_db", [20.0]), ("training.snr_db", [20.0]), ("evaluation.impairments", ["spacing"]),
                 ("evaluation.panels", ["snr"]), ("training.decoder", "hybrid"), ("training.finetune_steps", 2),
                 ("training.hybrid_grid", 16))
    exp = spec.experiment()
    (pt,) = exp.points(spec.config)
    agg = aggregate_rows(exp.run_unit(spec.config, WorkUnit(0, pt, 0, 20, 11), torch.device("cpu")).rows)
    for metric in ("aod_rmse_deg_bs1", "position_rmse_m"):
        assert math.isfinite(agg[("learned", metric)][0])
    for name in ("aod", "aod-hybrid", "position", "position-hybrid"):
        assert len(_store_files(model_cache, name)) == 1, name


def test_hybrid_correction_warm_start_chains_over_training_snrs(model_cache):
    """``finetune_warm_steps``: the 20 dB correction decoder starts from the 10 dB one (not zeros),
    the coarse decoder and precoders come from the 20 dB seed model, each model stored once."""
    from isackit.experiments.plugins import positioning as P

    spec = _spec(("training.warm_steps", 2), ("training.snr_db", [10.0, 20.0]), ("training.decoder", "hybrid"),
                 ("training.finetune_steps", 2), ("training.finetune_warm_steps", 1),
                 ("training.finetune_lr", 1e-2), ("training.hybrid_grid", 16))
    cfg = spec.config
    sc = P.scenario_of(cfg, "coupling")
    low, _ = P.trained_model(cfg, "aod", sc, 10.0)
    seen = {}
    real = P.hybrid_from

    def spy(base, *args, correction_from=None, **kw):
        seen["from"] = correction_from
        model = real(base, *args, correction_from=correction_from, **kw)
        seen["start"] = {k: v.clone() for k, v in model.decoder.state_dict().items()}
        seen["coarse"] = {k: v.clone() for k, v in model.coarse.state_dict().items()}
        return model

    P.hybrid_from = spy
    try:
        high, (rec,) = P.trained_model(cfg, "aod", sc, 20.0)
    finally:
        P.hybrid_from = real
    assert seen["from"] is low
    assert all(torch.equal(seen["start"][k], v) for k, v in low.decoder.state_dict().items())
    base20, _ = P.seed_model(cfg, "aod", sc, 20.0)
    assert all(torch.equal(seen["coarse"][k], v) for k, v in base20.decoder.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(high.precoder_nets.parameters(), base20.precoder_nets.parameters(),
                                                 strict=True))
    assert not torch.equal(high.decoder.net[-1].weight, low.decoder.net[-1].weight)   # it trained further
    assert len(_store_files(model_cache, "aod-hybrid")) == 2
    P._STORES.clear()
    again, (rec2,) = P.trained_model(cfg, "aod", sc, 20.0)                      # from disk, same weights
    assert rec2 == rec
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), high.state_dict().values(), strict=True))


def test_progress_is_reported_while_training(model_cache):
    from isackit.experiments.plugins import positioning as P

    calls = []
    cfg = _spec().config
    P.seed_model(cfg, "position", P.scenario_of(cfg, "none"), 20.0, progress=lambda d, n, w: calls.append((d, n, w)))
    assert calls[0][0] == 0 and calls[-1][:2] == (3, 3) and "position" in calls[-1][2]


@pytest.mark.parametrize("override,msg", [
    (("evaluation.snr_db", []), "snr_db"),
    (("evaluation.snr_db", [float("nan")]), "snr_db"),
    (("evaluation.panels", []), "panels"),
    (("training.model_dir", "../elsewhere"), "leave its folder"),
    (("training.model_dir", "/abs"), "relative path"),
    (("training.min_lr", 1.0), "min_lr"),
    (("scenario.impairment", "rust"), "impairment"),
])
def test_bad_config_is_a_one_line_error(override, msg):
    with pytest.raises(ValueError, match=msg):
        _spec(override)


def test_summary_table_and_headlines():
    from isackit.experiments.plugins.positioning import positioning_summary

    recs = []
    for imp in ("none", "spacing"):
        for x in (10.0, 20.0):
            for metric, bound in (("aod_rmse_deg_bs1", "CRB"), ("position_rmse_m", "PEB")):
                recs += [dict(panel="snr", impairment=imp, x=x, method="benchmark", metric=metric, value=2.0),
                         dict(panel="snr", impairment=imp, x=x, method="learned", metric=metric, value=1.0),
                         dict(panel="snr", impairment=imp, x=x, method=f"{bound} (benchmark)", metric=metric,
                              value=0.5),
                         dict(panel="snr", impairment=imp, x=x, method=f"{bound} (learned)", metric=metric,
                              value=0.8)]
    table, lines = positioning_summary(pd.DataFrame.from_records(recs))
    assert list(table["method"]) == ["benchmark", "learned"] * 2
    assert table.loc[0, "pos RMSE (m)"] == 2.0 and table.loc[0, "PEB (m)"] == 0.5
    assert table.loc[1, "AoD1 RMSE (°)"] == 1.0 and table.loc[1, "CRB1 (°)"] == 0.8
    assert list(table.columns) == ["impairment", "method", "pos RMSE (m)", "PEB (m)", "MCRB (m)", "AoD1 RMSE (°)",
                                   "CRB1 (°)"]
    assert lines[0] == ("position at 20 dB, none: benchmark RMSE/PEB = 4.00, learned RMSE/PEB = 1.25, "
                        "benchmark/learned RMSE = 2.00")
    empty, no_lines = positioning_summary(pd.DataFrame.from_records(recs).assign(panel="zeta"))
    assert empty.empty and no_lines == []


def test_positioning_figures_from_a_results_table(tmp_path, monkeypatch):
    """Seed-style figures: one per precoder-response table, per impairment on the SNR panel and per
    sweep; called by the generic plotting through the experiment's hook; panels without data skipped.

    The figures are built (layout included) but saved for real only in the end-to-end call through
    ``plot_results`` (one panel), since PNG + SVG rendering dominates the cost."""
    from isackit.experiments.plugins import positioning  # noqa: F401  (registers the experiment)
    from isackit.experiments.plugins import positioning_figures as pf
    from isackit.experiments.plotting import plot_results

    recs = []
    for imp in ("none", "coupling"):
        for x in (-90.0, 0.0, 50.0):
            for bs in (1, 2):
                for method in ("benchmark", "learned"):
                    recs.append(dict(panel="pattern", impairment=imp, x=x, method=method,
                                     metric=f"beam_gain_bs{bs}", value=1.0 + bs, n_trials=1))
        for x in (0.0, 10.0):
            for metric, bound in (("aod_rmse_deg_bs1", "CRB"), ("aod_rmse_deg_bs2", "CRB"), ("position_rmse_m", "PEB")):
                for method in ("benchmark", "learned", f"{bound} (benchmark)", f"{bound} (learned)"):
                    recs.append(dict(panel="snr", impairment=imp, x=x, method=method, metric=metric,
                                     value=10.0 ** (-x / 20), n_trials=10))
    recs += [dict(panel="zeta", impairment="coupling", x=z, method=m, metric="position_rmse_m", value=0.1,
                  n_trials=10) for z in (-1.0, -0.5) for m in ("benchmark", "learned", "MCRB (benchmark)")]
    df = pd.DataFrame.from_records(recs)

    import matplotlib.pyplot as plt

    built = {}

    def record(fig, out_dir, stem):
        built[stem] = [(len(ax.get_lines()), ax.get_title()) for ax in fig.axes]
        plt.close(fig)
        return [tmp_path / "a" / f"{stem}.{e}" for e in ("png", "svg")]

    with monkeypatch.context() as m:
        m.setattr(pf, "save_figure", record)
        names = sorted(p.name for p in pf.positioning_figures(df, {}, tmp_path / "a"))
    assert names == sorted(f"{s}.{e}" for s in ("precoder_responses", "rmse_vs_snr_none", "rmse_vs_snr_coupling",
                                               "position_rmse_vs_zeta") for e in ("png", "svg"))
    # 2 impairments x 2 BSs of responses (benchmark, learned); 3 metrics x 4 curves; 3 curves vs zeta
    assert built["precoder_responses"] == [(2, f"BS {b}, {t}") for t in ("no impairment", "mutual coupling")
                                           for b in (1, 2)]
    assert [n for n, _ in built["rmse_vs_snr_none"]] == [4, 4, 4]
    assert [n for n, _ in built["position_rmse_vs_zeta"]] == [3]
    assert pf.positioning_figures(df.iloc[:0], {}, tmp_path / "b") == []
    zeta = df[df["panel"] == "zeta"]
    written = {p.name for p in plot_results(zeta, {"experiment": "positioning", "params": ["panel", "impairment", "x"],
                                                   "bounds": []}, tmp_path / "c")}
    assert {"position_rmse_vs_zeta.png", "position_rmse_vs_zeta.svg"} <= written
    assert all((tmp_path / "c" / n).stat().st_size > 0 for n in written)


def test_unit_memory_grows_with_the_sizes():
    small = _spec().config
    big = _spec(("chunk", 10_000_000), ("trials", 10_000_000)).config
    exp = _spec().experiment()
    b_small, what = exp.unit_memory(small)
    b_big, _ = exp.unit_memory(big)
    assert 1e6 < b_small < 1e10 and b_big > 1e3 * b_small and "chunk" in what


def test_benchmark_design_is_shared_by_scenarios_that_differ_only_in_the_impairment():
    """The CRB-optimal benchmark sees only the nominal array: one design per nominal scenario, equal
    to designing afresh with the impaired scenario's nominal array."""
    from isackit.bounds.aod import crb_optimal_precoder
    from isackit.experiments.plugins import positioning as P

    cfg = _spec(("evaluation.power_angles", 5)).config
    P._Setup.cache.clear()
    P._Setup.designs.clear()
    a = P._Setup.get(cfg, P.scenario_of(cfg, "none"))
    b = P._Setup.get(cfg, P.scenario_of(cfg, "coupling", zeta=-0.5))
    assert a is not b and b.F_aod is a.F_aod and b.F_pos is a.F_pos and len(P._Setup.designs) == 1
    T = b.scenario.num_transmissions
    fresh, _ = crb_optimal_precoder(b.arrays[0].ideal(), b.aod_sectors, T, cfg.evaluation.power_angles)
    assert torch.equal(fresh, b.F_aod)
