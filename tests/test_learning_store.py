"""The model store: keyed by everything that determines a model; damage detected; paths safe."""

import json
import types

import pytest
import torch

from isackit.learning.store import ModelStore, code_fingerprint, model_key
from isackit.learning.training import TrainingConfig, fit
from isackit.seeding import make_generator


def _build():
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
    return lin


def _trainer(counter, slope=2.0):
    cfg = TrainingConfig(steps=30, lr=0.05)

    def train(model, ckpt):
        counter.append(ckpt)
        g = make_generator(0, "data")

        def step(t):
            x = torch.randn(16, 2, generator=g)
            return ((model(x) - slope * x.sum(-1, keepdim=True)) ** 2).mean()

        return fit(model, step, cfg, generators={"data": g}, checkpoint_dir=ckpt)

    return train


def test_get_or_train_caches_and_records(tmp_path):
    calls = []
    store = ModelStore(tmp_path, memory=False)
    m1, rec = store.get_or_train("lin", _build, _trainer(calls), config={"slope": 2.0}, seed=0)
    assert len(calls) == 1 and not m1.training
    assert set(rec) == {"name", "path", "sha256", "key"} and rec["name"] == "lin"
    path = tmp_path / "lin" / rec["key"] / "weights.safetensors"
    assert rec["path"] == str(path) and path.is_file()
    assert not (path.parent / "training").exists()         # the training checkpoints are removed
    m2, rec2 = store.get_or_train("lin", _build, _trainer(calls), config={"slope": 2.0}, seed=0)
    assert len(calls) == 1 and rec2 == rec
    assert torch.equal(m1.weight, m2.weight)
    meta = store.metadata(rec)
    assert meta["identity"]["seed"] == 0 and meta["log"]["records"]


def test_memory_returns_the_same_object(tmp_path):
    calls = []
    store = ModelStore(tmp_path)
    a, _ = store.get_or_train("lin", _build, _trainer(calls), config={}, seed=0)
    b, _ = store.get_or_train("lin", _build, _trainer(calls), config={}, seed=0)
    assert a is b and len(calls) == 1


@pytest.mark.parametrize("change", [
    dict(config={"slope": 2.0, "impairment": "coupling"}),
    dict(config={"slope": 2.0, "training": TrainingConfig(steps=31)}),
    dict(seed=1),
    dict(code=["another code version"]),
])
def test_any_change_of_identity_retrains(tmp_path, change):
    calls = []
    store = ModelStore(tmp_path, memory=False)
    base = dict(config={"slope": 2.0}, seed=0, code=["code v1"])
    _, rec = store.get_or_train("lin", _build, _trainer(calls), **base)
    _, rec2 = store.get_or_train("lin", _build, _trainer(calls), **{**base, **change})
    assert len(calls) == 2 and rec2["key"] != rec["key"]


def test_library_version_is_in_the_key(tmp_path, monkeypatch):
    import isackit

    store = ModelStore(tmp_path, memory=False)
    k1 = model_key(store.identity("lin", {}, 0))
    monkeypatch.setattr(isackit, "__version__", "9.9.9")
    assert model_key(store.identity("lin", {}, 0)) != k1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "edit_config", "delete_weights", "bad_manifest"])
def test_damaged_model_is_retrained_with_a_warning(tmp_path, damage):
    calls = []
    store = ModelStore(tmp_path, memory=False)
    good, rec = store.get_or_train("lin", _build, _trainer(calls), config={}, seed=0)
    d = tmp_path / "lin" / rec["key"]
    w = d / "weights.safetensors"
    if damage == "truncate":
        w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])
    elif damage == "garbage":
        w.write_bytes(b"\x00" * 64)
    elif damage == "edit_config":
        cfg = json.loads((d / "config.json").read_text())
        cfg["identity"]["seed"] = 5
        (d / "config.json").write_text(json.dumps(cfg))
    elif damage == "delete_weights":
        w.unlink()
    else:
        (d / "model.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="damaged"):
        again, rec2 = store.get_or_train("lin", _build, _trainer(calls), config={}, seed=0)
    assert len(calls) == 2
    assert rec2 == rec                                      # deterministic retraining: same file
    assert torch.equal(again.weight, good.weight)


def test_names_and_paths_stay_inside_the_root(tmp_path):
    store = ModelStore(tmp_path / "store")
    for bad in ["../evil", "a/b", ".hidden", "", "x" * 101, "a..b", "/abs"]:
        with pytest.raises(ValueError, match="model name"):
            store.get_or_train(bad, _build, _trainer([]), config={}, seed=0)
    with pytest.raises(ValueError, match="model key"):
        store.folder("lin", "../../etc")
    with pytest.raises(TypeError, match="seed"):
        store.get_or_train("lin", _build, _trainer([]), config={}, seed=1.5)
    with pytest.raises(ValueError, match="finite"):
        store.get_or_train("lin", _build, _trainer([]), config={"lr": float("nan")}, seed=0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        store.get_or_train("lin", lambda: 3, _trainer([]), config={}, seed=0)
    assert not (tmp_path / "store").exists()


def test_loading_never_unpickles(tmp_path):
    """The store's files are safetensors + JSON only."""
    store = ModelStore(tmp_path, memory=False)
    _, rec = store.get_or_train("lin", _build, _trainer([]), config={}, seed=0)
    files = sorted(p.name for p in (tmp_path / "lin" / rec["key"]).iterdir())
    assert files == ["config.json", "model.json", "weights.safetensors"]


def test_code_fingerprint_ignores_docs_not_code():
    def src(body):
        mod = types.ModuleType("m")
        exec(compile(body, "<m>", "exec"), mod.__dict__)
        return body

    a = 'def f(x):\n    """doc one"""\n    return x + 1  # comment\n'
    b = 'def f(x):\n    """another doc"""\n    # other comment\n    return x + 1\n'
    c = 'def f(x):\n    return x + 2\n'
    from isackit.learning import store as st

    fp = [st.hashlib.sha256(st.ast.dump(st._strip_docstrings(st.ast.parse(src(s))), annotate_fields=False)
                            .encode()).hexdigest() for s in (a, b, c)]
    assert fp[0] == fp[1] != fp[2]
    from isackit.learning import complex as cx, training

    assert code_fingerprint(training, cx) == code_fingerprint(cx, training) != code_fingerprint(training)
    with pytest.raises(TypeError, match="code_fingerprint"):
        code_fingerprint(3)
