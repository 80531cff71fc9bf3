"""Summary tables and generic figures of tidy results whose sweep points do not all have the
same parameters (NaN in a swept column), and the experiments' own figure hook."""

from __future__ import annotations

import math

import pandas as pd

import isackit.experiments.plotting as plotting
from isackit.experiments import Experiment, ExperimentConfig, register_experiment
from isackit.experiments.report import generic_summary, label, metric_table, pick_values, to_markdown, wide_table

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
    assert [ax.get_xlabel() for ax in axes] == ["SNR (dB)", "Sigma"]
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



# ---------------------------------------------------------------------------------- what a user sees
def test_labels_carry_units_and_acronyms():
    assert label("snr_db") == "SNR (dB)" and label("rmse_deg") == "RMSE (°)"
    assert label("position_rmse_m") == "Position RMSE (m)" and label("sigma") == "Sigma"
    assert label("gospa_m") == "GOSPA (m)" and label("failure_rate") == "Failure rate"
    assert label("snr_db", {"snr_db": "SNR per element (dB)"}) == "SNR per element (dB)"


def test_pick_values_keeps_first_and_last():
    assert pick_values([3, 1, 2]) == [1, 2, 3]
    assert pick_values([0.0, 5.0, 10.0, 15.0, 20.0, 30.0]) == [0.0, 10.0, 30.0]
    assert pick_values([1.0, float("nan"), 2.0], limit=2) == [1.0, 2.0]


def test_generic_summary_one_row_per_method_bounds_beside_and_ratios():
    df = ragged()
    df = df[df["panel"] == "snr"].drop(columns=["sigma", "panel"])
    table, lines = generic_summary(df, bounds=["CRB"], x_axis="snr_db")
    assert table["method"].tolist() == ["A", "B", "CRB"]
    assert list(table.columns) == ["method", "rmse @ snr_db=0", "rmse @ snr_db=10", "rmse @ snr_db=20"]
    assert table.loc[0, "rmse @ snr_db=20"] == 21.0 and table.loc[2, "rmse @ snr_db=20"] == 2.5
    assert lines == ["rmse at snr_db=20: best A = 21 = 8.4 × CRB"]


def test_generic_summary_with_facets_and_no_bounds():
    df = ragged()
    table, lines = generic_summary(df[df["method"] != "CRB"], bounds=[], x_axis="snr_db")
    assert table["method"].tolist() == ["A", "B"] and lines == []   # the snr panel (x = snr_db)
    df2 = pd.concat([ragged().assign(array="ula"), ragged().assign(array="ura")])
    df2 = df2[df2["panel"] == "snr"].drop(columns=["sigma"])
    table, lines = generic_summary(df2, bounds=["CRB"], x_axis="snr_db")
    assert table[["array", "method"]].values.tolist() == [[a, m] for a in ("ula", "ura") for m in ("A", "B", "CRB")]
    assert len(lines) == 2
    assert generic_summary(df.iloc[0:0]) [0].empty


def _capture_all(monkeypatch):
    figs = {}

    def fake_save(fig, out_dir, stem):
        figs[stem] = fig
        return []

    monkeypatch.setattr(plotting, "save_figure", fake_save)
    return figs


def test_figure_lines_have_distinct_markers_styles_and_dashed_bounds(monkeypatch, tmp_path):
    recs = [{"snr_db": s, "method": m, "metric": "rmse_deg", "value": 1.0 / (1 + s), "n_trials": 0 if m == "CRB" else 5}
            for s in (0.0, 10.0, 20.0) for m in ("A", "B", "C", "CRB")]  # A, B, C coincide exactly
    figs = _capture_all(monkeypatch)
    plotting.plot_results(pd.DataFrame(recs), {"bounds": ["CRB"], "x_axis": "snr_db"}, tmp_path)
    ax = figs["rmse_deg"].axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    markers = [lines[m].get_marker() for m in "ABC"]
    assert len(set(markers)) == 3 and all(lines[m].get_markerfacecolor() == "none" for m in "ABC")
    assert lines["CRB"].get_linestyle() == "--" and lines["CRB"].get_marker() in ("", "None", None)
    assert all(lines[m].get_linestyle() != "--" for m in "ABC")
    assert ax.get_xlabel() == "SNR (dB)" and ax.get_ylabel() == "RMSE (°)"


def test_single_x_value_is_a_dot_chart_not_a_lone_dot_curve(monkeypatch, tmp_path):
    recs = [{"w": 0.5, "method": m, "metric": "rmse_m", "value": v, "n_trials": 0 if m == "PEB" else 5}
            for m, v in (("A", 2.0), ("B", 3.0), ("PEB", 1.0))]
    figs = _capture_all(monkeypatch)
    plotting.plot_results(pd.DataFrame(recs), {"bounds": ["PEB"]}, tmp_path)
    ax = figs["rmse_m"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"]      # methods are categories
    assert ax.get_xlabel() == "RMSE (m)" and "W = 0.5" in ax.get_title()
    peb = [ln for ln in ax.get_lines() if ln.get_label() == "PEB"]
    assert peb and peb[0].get_linestyle() == "--" and list(peb[0].get_xdata()) == [1.0, 1.0]


def test_tick_labels_have_no_offset_notation(monkeypatch, tmp_path):
    recs = [{"w": w, "method": "A", "metric": "comm_loss", "value": -0.9999999 + 1e-8 * w, "n_trials": 5}
            for w in (0.0, 0.5, 1.0)]
    figs = _capture_all(monkeypatch)
    plotting.plot_results(pd.DataFrame(recs), {"log_y": False}, tmp_path)
    ax = figs["comm_loss"].axes[0]
    figs["comm_loss"].canvas.draw()
    texts = [t.get_text() for t in ax.get_yticklabels()]
    assert texts and all(len(t) <= 8 for t in texts), texts
    assert ax.get_ylabel() == "Comm loss − (-1)"
