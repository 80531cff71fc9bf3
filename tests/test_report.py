"""Summary tables and generic figures of tidy results whose sweep points do not all have the
same parameters (NaN in a swept column), and the experiments' own figure hook."""

from __future__ import annotations

import math

import pandas as pd

import isackit.plotting as plotting
from isackit.experiments import Experiment, ExperimentConfig, register_experiment
from isackit.experiments.report import metric_table, to_markdown, wide_table

# panel "snr" sweeps snr_db, panel "sigma" sweeps sigma: each lacks the other's column
POINTS = [{"panel": "snr", "snr_db": 0.0}, {"panel": "snr", "snr_db": 10.0}, {"panel": "snr", "snr_db": 20.0},
          {"panel": "sigma", "sigma": 0.1}, {"panel": "sigma", "sigma": 0.2}]


def ragged() -> pd.DataFrame:
    recs = []
    for i, p in enumerate(POINTS):
        for j, m in enumerate(["A", "B"]):
            recs.append({**p, "method": m, "metric": "rmse", "value": 1.0 + 10 * i + j, "n_trials": 5})
        recs.append({**p, "method": "CRB", "metric": "rmse", "value": 0.5 + i, "n_trials": 0})
    return pd.DataFrame.from_records(recs)


def test_tables_keep_every_row_of_a_ragged_sweep_in_sweep_order():
    df = ragged()
    assert df["snr_db"].isna().any() and df["sigma"].isna().any()
    wide = wide_table(df, {"bounds": ["CRB"]})
    assert len(wide) == len(POINTS)
    assert list(wide.columns) == ["panel", "snr_db", "sigma", "metric", "A", "B", "CRB"]
    assert wide["panel"].tolist() == [p["panel"] for p in POINTS]          # first-appearance order
    for i, p in enumerate(POINTS):
        assert wide.loc[i, "A"] == 1.0 + 10 * i and wide.loc[i, "B"] == 2.0 + 10 * i
        for c in ("snr_db", "sigma"):
            assert (math.isnan(wide.loc[i, c]) if c not in p else wide.loc[i, c] == p[c])
    narrow = metric_table(df, {"bounds": ["CRB"]})
    assert len(narrow) == 3 * len(POINTS)
    assert narrow["method"].tolist()[:3] == ["A", "B", "CRB"]
    md = to_markdown(df, {"bounds": ["CRB"]})
    body = [line for line in md.splitlines() if line.startswith("| snr") or line.startswith("| sigma")]
    assert len(body) == len(POINTS)
    assert body[3].startswith("| sigma | – | 0.1 |")                          # missing value shown as –


def test_tables_unchanged_without_missing_values():
    df = ragged()
    df = df[df["panel"] == "snr"].drop(columns="sigma")
    wide = wide_table(df)
    assert wide["snr_db"].tolist() == [0.0, 10.0, 20.0]
    assert wide["A"].tolist() == [1.0, 11.0, 21.0]


def test_panel_groups_split_by_present_parameters_and_lose_no_row():
    df = ragged()
    groups = plotting.panel_groups(df, ["panel", "snr_db", "sigma"], preferred="snr_db")
    assert [(x, facets, key) for x, facets, key, _ in groups] == [("snr_db", ["panel"], ("snr",)),
                                                                  ("sigma", ["panel"], ("sigma",))]
    assert sum(len(g) for *_, g in groups) == len(df)
    # no missing values: one group, x = the preferred parameter, facets = the rest
    full = df[df["panel"] == "snr"].drop(columns="sigma")
    (x, facets, key, g), = plotting.panel_groups(full, ["panel", "snr_db"], preferred="snr_db")
    assert (x, facets, key, len(g)) == ("snr_db", ["panel"], ("snr",), len(full))


def _capture(monkeypatch):
    figs = {}

    def fake_save(fig, out_dir, stem):
        figs[stem] = fig
        return []

    monkeypatch.setattr(plotting, "save_figure", fake_save)
    return figs


def test_generic_figure_of_a_ragged_sweep_has_one_panel_per_schema(monkeypatch, tmp_path):
    figs = _capture(monkeypatch)
    plotting.plot_results(ragged(), {"bounds": ["CRB"], "x_axis": "snr_db"}, tmp_path)
    axes = [ax for ax in figs["rmse"].axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["snr_db", "sigma"]
    for ax, n in zip(axes, (3, 2), strict=True):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        assert set(lines) == {"A", "B", "CRB"}
        assert all(len(ln.get_xdata()) == n and not pd.isna(ln.get_xdata()).any() for ln in lines.values())
    snr_ax = axes[0]
    a = next(ln for ln in snr_ax.get_lines() if ln.get_label() == "A")
    assert list(a.get_xdata()) == [0.0, 10.0, 20.0] and list(a.get_ydata()) == [1.0, 11.0, 21.0]


# ---------------------------------------------------------------------------------- figure hook
class HookConfig(ExperimentConfig):
    pass


@register_experiment("report-hook-toy", config_model=HookConfig, description="figure hook toy")
class HookToy(Experiment):
    calls: list = []

    def run_unit(self, config, unit, device):  # pragma: no cover - never run here
        return []

    def figures(self, df, meta, out_dir, run_dir):
        HookToy.calls.append((len(df), out_dir, run_dir))
        path = out_dir / "extra.txt"
        path.write_text("x")
        return [path]


def test_plot_results_calls_the_experiments_figure_hook(tmp_path):
    df = ragged()
    HookToy.calls.clear()
    paths = plotting.plot_results(df, {"experiment": "report-hook-toy"}, tmp_path / "figs", run_dir=tmp_path)
    assert HookToy.calls == [(len(df), tmp_path / "figs", tmp_path)]
    assert tmp_path / "figs" / "extra.txt" in paths
    # unknown experiment or none named: the generic figures only
    for meta in ({"experiment": "no-such-experiment"}, {}):
        names = {p.name for p in plotting.plot_results(df, meta, tmp_path / "g")}
        assert names == {"rmse.png", "rmse.svg"}
    assert len(HookToy.calls) == 1

