"""Every catalogue entry validates (full, quick and smoke) and runs end to end in CI.

CI runs each entry at its smoke size: the ``[quick]`` profile plus the entry's ``[smoke]``
table, which shrinks training-heavy entries whose quick profile takes minutes.  The quick
profiles themselves are run and measured outside the test suite (issue notes).
"""

from __future__ import annotations

import pytest

from isackit.cli import main
from isackit.experiments import catalogue, load_results, resolve_spec
from isackit.experiments.report import param_columns

ENTRIES = sorted(catalogue())


def test_catalogue_is_not_empty():
    assert "doa" in ENTRIES


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_validates_full_and_quick(name):
    full, quick = resolve_spec(name), resolve_spec(name, quick=True)
    smoke = resolve_spec(name, smoke=True)
    assert full.config.description, f"{name}: give the entry a one-line description"
    assert smoke.config.trials <= quick.config.trials <= full.config.trials
    assert len(quick.experiment().points(quick.config)) >= 1
    assert len(smoke.experiment().points(smoke.config)) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ENTRIES)
def test_entry_runs_at_smoke_size(name, tmp_path, capsys):
    out = tmp_path / name
    with pytest.raises(SystemExit) as exc:
        main(["run", name, "--smoke", "--out", str(out)])
    _, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    df, meta = load_results(out)
    assert len(df) > 0 and df["value"].notna().any()
    assert {"method", "metric", "value", "n_trials"} <= set(df.columns)
    assert param_columns(df), "results need at least one swept-parameter column"
    for f in ("config.toml", "env.json", "summary.md"):
        assert (out / f).is_file()
    assert list((out / "figures").glob("*.png")) and list((out / "figures").glob("*.svg"))
    with pytest.raises(SystemExit) as exc:
        main(["show", str(out)])
    assert exc.value.code in (0, None)
    assert meta["name"] in capsys.readouterr().out
