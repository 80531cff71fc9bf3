r"""S2 configuration: seed 002's gNB, grid, phase errors and channel, nested by concern.

Every value the seed prints is the default (marked [P] in ``shared/design/s2-mod-dnn.md``);
every value it leaves open is a field with our default ([D]).  Angles are degrees here (the
config edge) and radians everywhere else.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from ..._config import StrictModel
from ...constants import SPEED_OF_LIGHT

__all__ = [
    "TrainSettings",
    "AutoencoderConfig",
    "SSRConfig",
    "DeepMUSICConfig",
    "CNNConfig",
    "ModelsConfig",
    "ArrayConfig",
    "GridConfig",
    "PhaseErrorConfig",
    "ChannelConfig",
    "ScenarioConfig",
    "CHANNELS",
]

#: channel kinds: a single LoS ray (fast) or a TR 38.901 LoS scenario through Sionna
CHANNELS = ("los", "inh", "inf", "umi", "uma", "rma")


class ArrayConfig(StrictModel):
    """The gNB's receive array and the sampled SRS tones.

    ``subcarrier_spacing`` is the spacing of the K kept tones (seed: every 204th of 3264 at
    30 kHz, i.e. 6.12 MHz); ``wideband`` uses λ_k = c/(f_c + kΔf) per tone (eq. 1) instead of
    the narrowband model (eq. 2, the seed's).
    """

    num_elements: int = Field(4, ge=2)                 # [P] Table 1
    spacing: float = Field(0.5, gt=0)                  # [D] λ/2 at f_c (not printed)
    carrier_frequency: float = Field(4.85e9, gt=0)     # [P]
    num_subcarriers: int = Field(16, ge=1)             # [P] K = 16
    subcarrier_spacing: float = Field(6.12e6, gt=0)    # [D] 204 × 30 kHz
    wideband: bool = False

    @property
    def wavelength(self) -> float:
        return SPEED_OF_LIGHT / self.carrier_frequency


class GridConfig(StrictModel):
    """The over-complete AoA grid and its floor partition into P subregions (Sec. 3.1)."""

    min_deg: float = -60.0      # [P]
    max_deg: float = 60.0       # [P]
    step_deg: float = Field(0.1, gt=0)   # [P]
    subregions: int = Field(4, ge=1)     # [P]

    @model_validator(mode="after")
    def _check(self):
        if self.max_deg <= self.min_deg:
            raise ValueError("grid.max_deg must exceed grid.min_deg")
        if self.min_deg < -90.0 or self.max_deg > 90.0:
            raise ValueError("the grid must lie within [-90, 90] degrees")
        n = (self.max_deg - self.min_deg) / self.step_deg
        if abs(n - round(n)) > 1e-6:
            raise ValueError("(grid.max_deg - grid.min_deg) must be a multiple of grid.step_deg")
        if self.size < 2 * self.subregions:
            raise ValueError("the grid needs at least two points per subregion")
        return self

    @property
    def size(self) -> int:
        """L, the number of grid points (1201 for the seed)."""
        return int(round((self.max_deg - self.min_deg) / self.step_deg)) + 1

    @property
    def step(self) -> float:
        return math.radians(self.step_deg)


class PhaseErrorConfig(StrictModel):
    r"""The per-device angle- and subcarrier-dependent phase errors (eq. 7, Fig. 1b).

    ``model = "smooth"``: :meth:`~isackit.impairments.SmoothPhaseError.sample` with these
    parameters, one draw per device (seeded).  ``extra``: further impairment presets (eq.-6
    chain: coupling, gain-phase, displacement …) appended to the true array, as
    :func:`~isackit.impairments.make_chain` specs.  ``rho`` is the degree of impairment
    (eq. 34, read as ψ → ρψ; ``rho_mode = "mix"``: the response (1 − ρ)a + ρ γ⊙a).
    """

    model: Literal["smooth", "none"] = "smooth"
    inner_max_deg: float = Field(15.0, ge=0)
    slope_range: list[float] = Field(default_factory=lambda: [0.5, 1.5])
    subcarrier_std: float = Field(0.05, ge=0)
    harmonics: int = Field(3, ge=1)
    threshold_deg: float = Field(30.0, gt=0)
    rho: float = Field(1.0, ge=0, le=1)
    rho_mode: Literal["phase", "mix"] = "phase"
    extra: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self):
        if len(self.slope_range) != 2 or not 0 <= self.slope_range[0] <= self.slope_range[1]:
            raise ValueError("impairment.slope_range must be [low, high] with 0 <= low <= high (deg/deg)")
        for spec in self.extra:
            if "name" not in spec:
                raise ValueError("every impairment.extra entry needs a 'name' (an impairment preset)")
        return self


class ChannelConfig(StrictModel):
    """Propagation: one LoS ray (``kind = "los"``: random delay and phase) or a TR 38.901 LoS
    scenario (Sionna's rays through our impaired array, path loss and shadowing off).

    UE and BS at the same height (the LoS elevation is 0 and the label is exactly the LoS
    azimuth) unless ``height_difference`` is set; distances uniform in ``distance_range``
    (indoor) or ``outdoor_distance_range`` (UMi/UMa/RMa).
    """

    kind: Literal["los", "inh", "inf", "umi", "uma", "rma"] = "los"
    max_delay_ns: float = Field(100.0, ge=0)                       # LoS ray delay U[0, max]
    distance_range: list[float] = Field(default_factory=lambda: [5.0, 50.0])
    outdoor_distance_range: list[float] = Field(default_factory=lambda: [20.0, 200.0])
    height: float = Field(1.5, gt=0)
    height_difference: float = 0.0
    inf_subscenario: Literal["SL", "DL", "SH", "DH", "HH"] = "SL"   # [D]
    inh_subscenario: Literal["mixed", "open"] = "mixed"             # [D]

    @model_validator(mode="after")
    def _check(self):
        for name in ("distance_range", "outdoor_distance_range"):
            r = getattr(self, name)
            if len(r) != 2 or not 0 < r[0] <= r[1]:
                raise ValueError(f"channel.{name} must be [low, high] metres with 0 < low <= high")
        return self


class ScenarioConfig(StrictModel):
    """Everything that makes the CSI: array, grid, phase errors, channel."""

    array: ArrayConfig = Field(default_factory=ArrayConfig)
    grid: GridConfig = Field(default_factory=GridConfig)
    impairment: PhaseErrorConfig = Field(default_factory=PhaseErrorConfig)
    channel: ChannelConfig = Field(default_factory=ChannelConfig)


# ---------------------------------------------------------------------------------------
# the learned receivers (seed 002, Secs. 3–5; Table 2)
# ---------------------------------------------------------------------------------------
class TrainSettings(StrictModel):
    """A training schedule in epochs (the seed's, Sec. 5, by default)."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)
    lr_step_epochs: int = Field(5, ge=1)
    lr_gamma: float = Field(0.5, gt=0, le=1)

    def training_config(self, num_samples: int):
        """The :class:`~isackit.learning.TrainingConfig` for ``num_samples`` samples (every batch logged)."""
        from ...learning.training import TrainingConfig

        per_epoch = max(1, math.ceil(num_samples / self.batch_size))
        return TrainingConfig(steps=self.epochs * per_epoch, batch_size=self.batch_size, lr=self.lr,
                              scheduler="step", step_size=self.lr_step_epochs * per_epoch, gamma=self.lr_gamma,
                              log_every=1)


class AutoencoderConfig(StrictModel):
    """Multi-task autoencoder (Table 2): hidden width d_c, target (eq. 10 on the noisy input
    as printed, or on the noise-free CSI)."""

    hidden: int = Field(16, ge=1)
    target: Literal["noisy", "clean"] = "noisy"
    training: TrainSettings = Field(default_factory=TrainSettings)


class SSRConfig(StrictModel):
    """Unrolled MoDL-SSR (Sec. 4): I, N_CG, λ, SCG options, calibrator options, labels."""

    iterations: int = Field(10, ge=1)            # [D] I
    cg_iterations: int = Field(10, ge=1)         # [D] N_CG (>= 2M: exact CG)
    lam: float = Field(0.1, ge=0)                # [P]
    eps: float = Field(0.5, ge=0)                # [P]
    mu: float = Field(0.0, ge=0)                 # [D] sparsity weight inside the network
    attractor: Literal["rza", "paper", "none"] = "rza"
    nonnegative: bool = False
    data_term: Literal["observed", "previous"] = "observed"
    init: Literal["coarray", "scg"] = "coarray"
    learn_lambda: bool = False
    channels: list[int] = Field(default_factory=lambda: [4, 8, 4, 1])   # [P]
    kernel_size: int = Field(32, ge=1)                                   # [P]
    bn_per_iteration: bool = True
    precise_bn: bool = True          # [D] BN statistics recomputed with the final weights after training
    final_bn: bool = True
    coord_channel: bool = False
    residual: bool = False
    labels: Literal["one_hot", "gaussian"] = "one_hot"                   # [P] one-hot
    label_width_deg: float = Field(0.3, gt=0)
    input: Literal["autoencoder", "oracle"] = "autoencoder"
    branch: Literal["energy", "concat"] = "energy"
    training: TrainSettings = Field(default_factory=TrainSettings)


class DeepMUSICConfig(StrictModel):
    channels: int = Field(256, ge=1)
    hidden: int = Field(1024, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    training: TrainSettings = Field(default_factory=TrainSettings)


class CNNConfig(StrictModel):
    channels: list[int] = Field(default_factory=lambda: [32, 64, 128])
    hidden: int = Field(256, ge=1)
    training: TrainSettings = Field(default_factory=TrainSettings)


class ModelsConfig(StrictModel):
    """The learned receivers and their data: ``train_per_angle`` samples per grid angle at
    ``train_snr_db`` (a value, or [low, high] uniform)."""

    train_per_angle: int = Field(40, ge=1)        # [P] Table 2
    train_snr_db: float | list[float] = 10.0      # [P] AE; [D] the rest
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    ssr: SSRConfig = Field(default_factory=SSRConfig)
    deepmusic: DeepMUSICConfig = Field(default_factory=DeepMUSICConfig)
    cnn: CNNConfig = Field(default_factory=CNNConfig)
