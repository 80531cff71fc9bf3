"""The one training loop: schedules, determinism, resume == uninterrupted, checkpoints, errors."""

import json
import math

import pytest
import torch
from pydantic import ValidationError

from isackit.learning.training import TrainingConfig, TrainingLog, fit, lr_factor, make_scheduler, make_optimizer
from isackit.seeding import make_generator


class _Net(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        g = make_generator(seed, "init")
        self.lin = torch.nn.Linear(3, 8)
        self.out = torch.nn.Linear(8, 1)
        self.drop = torch.nn.Dropout(0.1)           # global-RNG consumer: resume must restore it
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))

    def forward(self, x):
        return self.out(self.drop(torch.tanh(self.lin(x))))


def _problem(seed=0):
    model = _Net(seed)
    gens = {"data": make_generator(seed, "data"), "noise": make_generator(seed, "noise")}

    def step(t):
        x = torch.randn(16, 3, generator=gens["data"])
        y = x.sum(-1, keepdim=True).sin() + 0.01 * torch.randn(16, 1, generator=gens["noise"])
        loss = ((model(x) - y) ** 2).mean()
        return loss, {"mse": loss, "batch": 16}

    return model, step, gens


def _cfg(**kw):
    base = dict(steps=30, batch_size=16, lr=1e-2, scheduler="cosine", final_lr_fraction=0.1, log_every=4,
                grad_clip_norm=1.0)
    base.update(kw)
    return TrainingConfig(**base)


def _same_state(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_fit_is_deterministic_and_logs():
    torch.manual_seed(0)
    m1, s1, g1 = _problem()
    log1 = fit(m1, s1, _cfg(), generators=g1)
    torch.manual_seed(0)
    m2, s2, g2 = _problem()
    log2 = fit(m2, s2, _cfg(), generators=g2)
    assert _same_state(m1, m2)
    assert [r["step"] for r in log1.records] == [0, 4, 8, 12, 16, 20, 24, 28, 29]
    assert [{k: v for k, v in r.items()} for r in log1.records] == log2.records
    assert set(log1.records[0]) == {"step", "loss", "mse", "batch", "lr", "grad_norm"}
    assert log1.records[-1]["loss"] < log1.records[0]["loss"]
    assert log1.seconds > 0
    assert m1.training                                      # mode restored


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    torch.manual_seed(1)
    ref_model, ref_step, ref_gens = _problem()
    ref = fit(ref_model, ref_step, _cfg(), generators=ref_gens)

    torch.manual_seed(1)
    m, s, g = _problem()
    calls = []

    def interrupted(t):
        if t == 17:
            raise KeyboardInterrupt
        calls.append(t)
        return s(t)

    with pytest.raises(KeyboardInterrupt):
        fit(m, interrupted, _cfg(checkpoint_every=5), generators=g, checkpoint_dir=tmp_path)
    meta = json.loads((tmp_path / "latest.json").read_text())
    assert meta["step"] == 14 and len(list(tmp_path.glob("step-*"))) == 1

    torch.manual_seed(123)                                 # the global RNG is restored from the checkpoint
    m2, s2, g2 = _problem(seed=0)
    with torch.no_grad():                                  # weights come from the checkpoint
        for p in m2.parameters():
            p.zero_()
    for gg in g2.values():                                 # generator states too
        gg.manual_seed(99)
    done = []
    log = fit(m2, s2, _cfg(checkpoint_every=5), generators=g2, checkpoint_dir=tmp_path,
              progress=lambda d, n, w: done.append((d, n, w)))
    assert done[0] == (15, 30, "training") and done[-1] == (30, 30, "training")
    assert _same_state(m2, ref_model)
    strip = [{k: v for k, v in r.items()} for r in log.records]
    assert strip == ref.records
    # a finished checkpoint: fit returns at once with the final weights
    m3, s3, g3 = _problem(seed=5)
    fit(m3, s3, _cfg(checkpoint_every=5), generators=g3, checkpoint_dir=tmp_path)
    assert _same_state(m3, ref_model)


def test_damaged_checkpoint_warns_and_restarts(tmp_path):
    torch.manual_seed(2)
    m, s, g = _problem()
    fit(m, s, _cfg(steps=10, checkpoint_every=5), generators=g, checkpoint_dir=tmp_path)
    weights = next(tmp_path.glob("step-*")) / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])       # truncated
    torch.manual_seed(2)
    m2, s2, g2 = _problem()
    with pytest.warns(RuntimeWarning, match="damaged"):
        log = fit(m2, s2, _cfg(steps=10, checkpoint_every=5), generators=g2, checkpoint_dir=tmp_path)
    assert log.records[0]["step"] == 0
    assert _same_state(m, m2)


def test_checkpoint_of_another_config_is_an_error(tmp_path):
    m, s, g = _problem()
    fit(m, s, _cfg(steps=6, checkpoint_every=3), generators=g, checkpoint_dir=tmp_path)
    m, s, g = _problem()
    with pytest.raises(ValueError, match="another training config"):
        fit(m, s, _cfg(steps=6, checkpoint_every=3, lr=0.5), generators=g, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="another training config"):
        fit(m, s, _cfg(steps=6, checkpoint_every=3), generators=g, checkpoint_dir=tmp_path, identity={"snr": 3})


def test_checkpoint_state_loads_with_weights_only(tmp_path):
    m, s, g = _problem()
    fit(m, s, _cfg(steps=4, checkpoint_every=2), generators=g, checkpoint_dir=tmp_path)
    d = next(tmp_path.glob("step-*"))
    state = torch.load(d / "state.pt", weights_only=True)
    assert set(state) == {"step", "optimizer", "scheduler", "generators", "global_rng"}
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "log.json", "state.pt", "weights.safetensors"]


@pytest.mark.parametrize("kind,expected", [
    ("constant", [1.0, 1.0, 1.0, 1.0]),
    ("step", [1.0, 1.0, 0.5, 0.5]),
    ("exponential", [1.0, 0.5, 0.25, 0.125]),
])
def test_simple_schedules(kind, expected):
    cfg = TrainingConfig(steps=4, scheduler=kind, step_size=2, gamma=0.5)
    assert [lr_factor(t, cfg) for t in range(4)] == pytest.approx(expected, rel=1e-15)


def test_cosine_matches_torch_and_the_last_step_variant():
    lr, steps, f = 1e-3, 50, 1e-5
    cfg = TrainingConfig(steps=steps, lr=lr, scheduler="cosine", final_lr_fraction=f)
    p = torch.nn.Parameter(torch.zeros(1))
    opt_ref = torch.optim.Adam([p], lr=lr)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt_ref, T_max=steps, eta_min=f * lr)
    opt = make_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    sch = make_scheduler(opt, cfg)
    for _ in range(steps):
        assert opt.param_groups[0]["lr"] == pytest.approx(opt_ref.param_groups[0]["lr"], rel=1e-12, abs=1e-20)
        opt_ref.step(), ref.step(), opt.step(), sch.step()
    last = TrainingConfig(steps=steps, scheduler="cosine", final_lr_fraction=0.2, anneal_to_last_step=True)
    assert lr_factor(0, last) == 1.0 and lr_factor(steps - 1, last) == pytest.approx(0.2, rel=1e-15)
    t = 17
    s0 = 0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * t / (steps - 1)))
    assert lr_factor(t, last) == s0
    lin = TrainingConfig(steps=10, scheduler="linear", final_lr_fraction=0.0)
    assert lr_factor(5, lin) == pytest.approx(0.5, rel=1e-15)


def test_param_groups_keep_their_own_lr_and_surrogate_backprop():
    a = torch.nn.Parameter(torch.zeros(2))
    b = torch.nn.Parameter(torch.zeros(2))
    model = torch.nn.Module()
    model.a, model.b = a, b
    target = torch.tensor([1.0, -1.0])

    def step(t):
        loss = ((a - target) ** 2).sum() + ((b - target) ** 2).sum()
        surrogate = (a * 0.0).sum()                      # value irrelevant; gradient adds nothing
        return loss + surrogate, {"loss": loss.detach() * 0 + 42.0}

    cfg = TrainingConfig(steps=1, optimizer="sgd", lr=0.1, log_every=1)
    log = fit(model, step, cfg, params=[{"params": [a]}, {"params": [b], "lr": 0.01}])
    assert torch.allclose(a.detach(), 0.2 * target)
    assert torch.allclose(b.detach(), 0.02 * target)
    assert log.records[0]["loss"] == 42.0                 # the step's logged loss, not the surrogate


def test_monitor_is_outside_the_step_and_checked():
    torch.manual_seed(3)
    m1, s1, g1 = _problem()
    fit(m1, s1, _cfg(), generators=g1)
    torch.manual_seed(3)
    m2, s2, g2 = _problem()
    log = fit(m2, s2, _cfg(), generators=g2, monitor=lambda mod: {"w": mod.lin.weight.norm(), "r": torch.rand(())})
    assert _same_state(m1, m2)
    assert all("w" in r and "r" in r for r in log.records)
    m3, s3, g3 = _problem()
    with pytest.raises(RuntimeError, match="drew from a training generator"):
        fit(m3, s3, _cfg(), generators=g3, monitor=lambda mod: {"x": torch.rand((), generator=g3["data"])})
    with pytest.raises(RuntimeError, match="changed the model"):
        fit(m3, s3, _cfg(), generators=g3, monitor=lambda mod: {"x": mod.lin.weight.mul_(1.0).sum()})


def test_training_log_round_trip():
    log = TrainingLog(records=[{"step": 0, "loss": 1.5}, {"step": 9, "loss": 0.5}], seconds=2.0)
    back = TrainingLog.from_dict(json.loads(json.dumps(log.to_dict())))
    assert back == log and back.column("loss") == [1.5, 0.5] and back.final["step"] == 9
    with pytest.raises(ValueError, match="records"):
        TrainingLog.from_dict({"seconds": 1})


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(ValidationError, match="steps"):
        TrainingConfig(steps=0)
    with pytest.raises(ValidationError, match="lr"):
        TrainingConfig(lr=float("nan"))
    with pytest.raises(ValidationError, match="betas"):
        TrainingConfig(betas=[0.9])
    with pytest.raises(ValidationError, match="momentum applies"):
        TrainingConfig(momentum=0.9)
    with pytest.raises(ValidationError, match="scheduler"):
        TrainingConfig(scheduler="plateau")
    model = torch.nn.Linear(1, 1)
    with pytest.raises(TypeError, match="scalar tensor"):
        fit(model, lambda t: 1.0, TrainingConfig(steps=1))
    with pytest.raises(TypeError, match="scalar tensor"):
        fit(model, lambda t: model.weight.sum(-1) * torch.ones(3), TrainingConfig(steps=1))
    with pytest.raises(FloatingPointError, match="diverged"):
        fit(model, lambda t: model.weight.sum() * float("nan"), TrainingConfig(steps=1))
    with pytest.raises(ValueError, match="no parameters"):
        fit(model, lambda t: model.weight.sum(), TrainingConfig(steps=1), params=[])
    with pytest.raises(TypeError, match="generators"):
        fit(model, lambda t: model.weight.sum(), TrainingConfig(steps=1), generators={"a": 1})
