"""Experiment specs: TOML → typed configs, overrides, [quick], the saved config's round trip."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import BaseModel, ConfigDict

from isackit.experiments import (
    ExperimentConfig,
    ExperimentError,
    apply_overrides,
    catalogue,
    config_hash,
    parse_override,
    resolve_spec,
    to_toml,
)
from isackit.experiments.config import flatten, validate_config


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    n: int = 1
    xs: list[float] = [1.0]


class Cfg(ExperimentConfig):
    inner: Inner = Inner()
    name: str = "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trials=50", ("trials", 50)),
        ("sweep.snr_db=[0, 10.5]", ("sweep.snr_db", [0, 10.5])),
        ("flag=true", ("flag", True)),
        ('name="a b"', ("name", "a b")),
        ("device=cuda:1", ("device", "cuda:1")),
        ("impairment=gain_phase", ("impairment", "gain_phase")),
        ("x = 1e-3", ("x", 1e-3)),
        ("opts={a = 1}", ("opts", {"a": 1})),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=1", "a..b=1", "x=", "x=[1,", "x=a b"])
def test_parse_override_rejects(text):
    with pytest.raises(ExperimentError, match="bad --set"):
        parse_override(text)


def test_apply_overrides_is_a_deep_copy_and_creates_tables():
    data = {"a": {"b": 1}, "c": 2}
    out = apply_overrides(data, [("a.b", 3), ("d.e", 4)])
    assert out == {"a": {"b": 3}, "c": 2, "d": {"e": 4}}
    assert data == {"a": {"b": 1}, "c": 2}
    with pytest.raises(ExperimentError, match="'c' is a value"):
        apply_overrides(data, [("c.x", 1)])


def test_flatten_nested_and_dotted_quick_tables():
    assert flatten({"trials": 2, "sweep": {"snr_db": [0]}, "sweep.x": 1}) == {
        "trials": 2, "sweep.snr_db": [0], "sweep.x": 1}


def test_validation_messages_name_the_key():
    good = {"experiment": "t"}
    assert validate_config(Cfg, good, "t").inner.n == 1
    cases = [
        ({"experiment": "t", "bogus": 1}, "unknown key 'bogus'"),
        ({"experiment": "t", "inner": {"m": 1}}, "unknown key 'inner.m'"),
        ({"experiment": "t", "inner": {"n": "3"}}, "inner.n: Input should be a valid integer"),
        ({"experiment": "t", "trials": 0}, "trials: Input should be greater than or equal to 1"),
        ({"experiment": "t", "seed": 1.5}, "seed: Input should be a valid integer"),
        ({}, "missing key 'experiment'"),
    ]
    for data, msg in cases:
        with pytest.raises(ExperimentError, match=msg.replace("(", r"\(").replace(")", r"\)")) as err:
            validate_config(Cfg, data, "t")
        assert "\n" not in str(err.value)


def test_int_accepted_for_float_but_not_str_for_int():
    c = validate_config(Cfg, {"experiment": "t", "inner": {"xs": [1, 2]}}, "t")
    assert c.inner.xs == [1.0, 2.0]
    with pytest.raises(ExperimentError):
        validate_config(Cfg, {"experiment": "t", "inner": {"xs": ["1"]}}, "t")


def test_quick_and_set_order(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('experiment = "doa"\ntrials = 100\n'
                    '[quick]\ntrials = 4\n"sweep.snr_db" = [1.0]\n[quick.array]\nelements = 4\n')
    full = resolve_spec(str(spec)).config
    quick = resolve_spec(str(spec), quick=True).config
    both = resolve_spec(str(spec), quick=True, overrides=[("trials", 7)]).config
    assert (full.trials, quick.trials, both.trials) == (100, 4, 7)
    assert quick.sweep.snr_db == [1.0] and quick.array.elements == 4 and full.array.elements == 8
    assert config_hash(full) != config_hash(quick)


@pytest.mark.parametrize("name", sorted(catalogue()))
@pytest.mark.parametrize("quick", [False, True])
def test_saved_config_round_trips(name, quick):
    spec = resolve_spec(name, quick=quick)
    text = to_toml(spec.config.model_dump(mode="json"))
    again = validate_config(spec.experiment.config_model, tomllib.loads(text), name)
    assert again == spec.config
    assert config_hash(again) == config_hash(spec.config)


def test_to_toml_writes_special_values():
    text = to_toml({"a": float("inf"), "b": "quote\" and \\", "c": [1, 2], "d": {"e": {"f": None, "g": 1}},
                    "h": [{"x": 1}], "key with space": True})
    assert tomllib.loads(text) == {"a": float("inf"), "b": "quote\" and \\", "c": [1, 2], "d": {"e": {"g": 1}},
                                   "h": [{"x": 1}], "key with space": True}


def _path_fields(model, prefix=""):
    """Dotted names of the config fields that hold a path (``*_dir``, ``*_dirs``, ``*_path``, ``*_file``)."""
    import typing

    from pydantic import BaseModel

    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        inner = [a for a in (typing.get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if inner:
            out += _path_fields(inner[0], key + ".")
        elif name.endswith(("_dir", "_dirs", "_path", "_file")):
            out.append(key)
    return out


@pytest.mark.parametrize("name", sorted(catalogue()))
def test_config_paths_cannot_leave_the_run_folder_or_model_cache(name):
    """Every path a config can set is relative and without '..' (issue 13: a spec must not
    make isackit write outside the run folder or the model cache)."""
    spec = resolve_spec(name, smoke=True)
    for key in _path_fields(spec.experiment.config_model):
        for bad in ("../outside", "/tmp/outside", "a/../../outside"):
            with pytest.raises(ExperimentError, match=key.split(".")[-1]):
                resolve_spec(name, smoke=True, overrides=[(key, bad)])
