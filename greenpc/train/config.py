"""Training configuration: the ``-train_*`` options (paper's settings as defaults) and the stage list.

Stages are data (section 3.4): each ``Stage`` names its epsilon, the network stages it evaluates, whether
the last one is the domain-decomposition mixture, which parameter groups train, and its step count. The
loop applies them through optax masking; no stage has code of its own.
"""
import json
import math
from dataclasses import asdict, dataclass

from .. import problems
from ..model.architecture import Architecture
from ..options import Option, OptionError, non_negative, positive, read
from ..problems.modes import WINDOWS


def _floats_positive(values):
    return None if values and all(v > 0 for v in values) else "expected positive numbers"


SPECS = (
    Option("output", str, "", "weight file to write (default PROBLEM.gpc)"),
    Option("seed", int, 0, "random seed (initialization, batches, DD perturbation)", check=non_negative),
    Option("epsilons", "floats", (), "source widths of the stages (1D: 1e-2,1e-3,1e-4; "
           "2D: 1e-2,5e-3,2e-3)", check=_floats_positive),
    Option("widths", "floats", (10, 15, 20), "hidden width of each stage's near/middle branches",
           check=_floats_positive),
    Option("width_scale", float, 1.0, "multiply every hidden width (2 for the parametric model)",
           check=positive),
    Option("depth", int, 3, "hidden layers of every branch", check=positive),
    Option("far_width", int, 50, "hidden width of the far-field branch", check=positive),
    Option("aux_width", int, 5, "hidden width of the scale networks and the gate", check=positive),
    Option("aux_depth", int, 2, "hidden layers of the scale networks and the gate", check=positive),
    Option("boundary_layer", bool, False, "learnable boundary-layer factor on G (extension of the "
           "paper for convection-dominated problems)"),
    Option("subdomains", int, 0, "experts Q of the DD stage (0: 3 in 1D, 5 in 2D, 9 over "
           "parameters; 1: no DD stage)", check=non_negative),
    Option("epochs", "floats", (), "epochs of each stage, the DD stage last (1D: 500,500,1000,3000; "
           "2D: 1000,1000,1000,2000)", check=_floats_positive),
    Option("epoch_scale", float, 1.0, "multiply every stage's epochs (short trial runs)",
           check=positive),
    Option("batches_per_epoch", int, 20, "mini-batches per epoch", check=positive),
    Option("batch_boundary", int, 500, "boundary pairs per batch", check=positive),
    Option("batch_anchor", int, 500, "anchor subsamples per batch", check=positive),
    Option("batch_uniform", int, 500, "uniform pairs in the domain per batch", check=positive),
    Option("batch_near", int, 1500, "pairs with |x - y| <= near_radius * eps per batch",
           check=positive),
    Option("batch_scale", float, 1.0, "multiply every batch size (2 for parametric problems)",
           check=positive),
    Option("near_radius", float, 3.0, "near-diagonal sampling radius in units of eps", check=positive),
    Option("anchor_N", int, 32, "interior points per direction of the coarse anchor grid",
           check=positive),
    Option("anchor_refine", int, 0, "compute anchors on a grid this many times finer, restricted "
           "to the anchor points (0: 8 in 1D, 4 in 2D)",
           check=non_negative),
    Option("anchor_params", str, "", "parameter values of the anchor data, e.g. "
           "theta=0:0.785398:1.570796:2.356194"),
    Option("param", str, "", "trained parameter ranges NAME=LOW:HIGH[:periodic], comma-separated"),
    Option("modes", float, 0.0, "split off the eigenmodes -lap phi = mu n^2 phi within this width of k2 "
           "(-lap - k2 n^2 presets): the network learns the remainder, which has no poles in k2 (0: off)",
           check=non_negative),
    Option("modes_window", "choice", "symmetric", "which modes S holds: symmetric (w = exp(-(t / width)^2), "
           "t = mu - k2) or below (every mode under k2 too, so the network learns only modes above k2)",
           choices=WINDOWS),
    Option("free_space", bool, False, "split off the free-space kernel of -div(A grad u) in closed form "
           "(a constant A in 2D, e.g. rotlap2d): the network learns the remainder, which solves L R = 0 "
           "with R = -S on the boundary (no source to learn; S is mollified at the last epsilon, on a grid "
           "at the width that gives the discrete operator's diagonal)"),
    Option("lr", float, 3e-3, "Adam learning rate at the start of the first stage", check=positive),
    Option("lr_later", float, 1e-3, "learning rate at the start of every later stage (a finer eps "
           "or the DD stage start from a trained network)", check=positive),
    Option("lr_final", float, 1e-4, "learning rate at the end of each stage", check=positive),
    Option("aux_weight", float, 1.0, "anchor loss weight at the start", check=non_negative),
    Option("aux_weight_final", float, 0.1, "anchor loss weight at the end (geometric decay)",
           check=non_negative),
    Option("bc_weight", float, 1.0, "boundary loss weight", check=non_negative),
    Option("res_weight", float, 1.0, "residual loss weight", check=non_negative),
    Option("residual_norm", "choice", "relative", "divide each residual by s_L |G| + N_eps(x, y) "
           "(relative), by the source's peak (source), or not (none)",
           choices=("relative", "source", "none")),
    Option("new_branches", "choice", "zero", "output layer of the branches a later epsilon stage adds: "
           "zero (G is unchanged when the stage starts) or random (their initial values, which add "
           "an O(1) error that the stage first has to undo)", choices=("zero", "random")),
    Option("init", str, "", "fine-tune: start from this weight file or shipped model (same preset and "
           "architecture, e.g. the family in another medium) and train only the final network, for the "
           "last stage's epochs"),
    Option("gate_steps", int, 500, "pretraining steps of the DD gate", check=non_negative),
    Option("gate_width", float, 0.5, "gate pretraining targets: softmax of -|z - seed|^2 / "
           "(width * seed spacing)^2", check=positive),
    Option("dd_perturbation", float, 0.01, "relative noise added to each expert copy",
           check=non_negative),
    Option("checkpoint", str, "", "checkpoint file (default OUTPUT.ckpt)"),
    Option("checkpoint_minutes", float, 5.0, "minutes between checkpoints (and at stage ends)",
           check=positive),
    Option("checkpoint_steps", int, 0, "also checkpoint every this many steps (0: never)",
           check=non_negative),
    Option("resume", bool, False, "continue from the checkpoint if there is one"),
    Option("export", str, "", "only write the model of the checkpoint (an unfinished run) to this "
           "weight file, to evaluate it"),
    Option("progress", bool, True, "show a progress bar"),
    Option("threads", int, 0, "CPU threads for XLA (0: all)", check=non_negative),
)

#: options added after checkpoints were committed, with the value that leaves training unchanged
LATER_OPTIONS = {"modes": 0.0, "modes_window": "symmetric", "init": "", "free_space": False}
DEFAULT_EPSILONS = {1: (1e-2, 1e-3, 1e-4), 2: (1e-2, 5e-3, 2e-3)}
DEFAULT_EPOCHS = {1: (500, 500, 1000, 3000), 2: (1000, 1000, 1000, 2000)}
DEFAULT_SUBDOMAINS = {1: 3, 2: 5}
PARAMETER_SUBDOMAINS = 9
GATE_LEARNING_RATE = 1e-2  # the gate is a tiny network pretrained from scratch


@dataclass(frozen=True)
class Stage:
    """One training stage: ``kind`` is "pde" (the loss of eq. 37) or "gate" (DD gate pretraining)."""

    name: str
    kind: str
    epsilon: float
    active: int
    dd: bool
    steps: int
    trainable: tuple
    lr: float


def parse_ranges(text):
    """NAME=LOW:HIGH[:periodic],... -> {name: {"low", "high", "period"}}."""
    ranges = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, spec = item.partition("=")
        parts = spec.split(":")
        try:
            low, high = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise OptionError(f"-train_param {item!r}: expected NAME=LOW:HIGH[:periodic]") from None
        if not low < high:
            raise OptionError(f"-train_param {item!r}: expected LOW < HIGH")
        periodic = len(parts) > 2 and parts[2] == "periodic"
        ranges[name.strip()] = {"low": low, "high": high, "period": (high - low) if periodic else None}
    return ranges


def parse_anchor_values(text):
    """NAME=V1:V2:...,... -> {name: [values]}."""
    values = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, spec = item.partition("=")
        try:
            values[name.strip()] = [float(v) for v in spec.split(":") if v]
        except ValueError:
            raise OptionError(f"-train_anchor_params {item!r}: expected NAME=V1:V2:...") from None
    return values


@dataclass(frozen=True)
class TrainConfig:
    problem: str
    fixed_params: dict
    trained_params: dict
    anchor_params: dict
    options: dict

    @property
    def preset(self):
        return problems.get(self.problem)

    @property
    def dim(self):
        return self.preset.dim

    @property
    def output(self):
        return self.options["output"] or f"{self.problem}.gpc"

    @property
    def checkpoint(self):
        return self.options["checkpoint"] or self.output + ".ckpt"

    def anchor_refine(self):
        # measured on the 32-point anchor grid against a 32x finer one: coarse anchors are off by
        # 7.8% (conv1d, upwind) and 1.9% (react1d); 8x finer ones by 0.7% and 0.03%
        return self.options["anchor_refine"] or (8 if self.dim == 1 else 4)

    def batch_sizes(self):
        scale = self.options["batch_scale"]
        return {k: max(1, int(round(self.options[f"batch_{k}"] * scale)))
                for k in ("boundary", "anchor", "uniform", "near")}

    def epsilons(self):
        return tuple(self.options["epsilons"]) or DEFAULT_EPSILONS[self.dim]

    def subdomains(self):
        q = self.options["subdomains"]
        if q:
            return q
        return PARAMETER_SUBDOMAINS if self.trained_params else DEFAULT_SUBDOMAINS[self.dim]

    def architecture(self):
        eps = self.epsilons()
        widths = tuple(self.options["widths"])
        if len(widths) != len(eps):
            raise OptionError(f"-train_widths {widths}: need one width per epsilon {eps}")
        scale = self.options["width_scale"]
        n_features = len(self.preset.features({**self.preset.params, **{k: 0.0 for k in
                                                                          self.trained_params}}))
        n_features = n_features if self.trained_params else 0
        return Architecture(
            dim=self.dim, epsilons=eps, widths=tuple(int(round(w * scale)) for w in widths),
            alpha0=tuple(self.initial_alpha(e) for e in eps), n_features=n_features,
            depth=self.options["depth"], far_width=int(round(self.options["far_width"] * scale)),
            aux_width=self.options["aux_width"], aux_depth=self.options["aux_depth"],
            subdomains=self.subdomains(), gate_input="params" if self.trained_params else "source",
            boundary_layer=self.options["boundary_layer"])

    def initial_alpha(self, epsilon):
        """eq. 26 for a diffusion-dominated source: alpha = r - p_a + 2 beta with r = -d, beta = 1."""
        import numpy as np

        x = np.full((1, self.dim), 0.5)
        params = {**self.fixed_params, **{k: v["low"] for k, v in self.trained_params.items()}}
        a = float(np.trace(self.preset.a(x, params)[0]) / self.dim)
        p_a = math.log(abs(a)) / math.log(epsilon)
        return 2.0 - self.dim - p_a

    def stages(self):
        """The stage list: one PDE stage per epsilon, then gate pretraining and the DD stage."""
        eps = self.epsilons()
        dd = self.subdomains() > 1
        epochs = tuple(self.options["epochs"])
        if not epochs:      # the defaults: one per epsilon stage, then the DD stage's if there is one
            default = DEFAULT_EPOCHS[self.dim]
            epochs = default[:min(len(eps), len(default) - 1)] + (default[-1:] if dd else ())
        if len(epochs) != len(eps) + (1 if dd else 0):
            raise OptionError(f"-train_epochs {epochs}: need one entry per epsilon "
                              f"{'plus one for the DD stage' if dd else ''} ({len(eps) + dd} values)")
        per_epoch = self.options["batches_per_epoch"]
        steps = [max(1, int(round(e * self.options["epoch_scale"] * per_epoch))) for e in epochs]
        first, later = self.options["lr"], self.options["lr_later"]
        base = ("far", "boundary") if self.options["boundary_layer"] else ("far",)
        out = []
        for k, e in enumerate(eps):
            trainable = base + tuple(f"stage_{j}" for j in range(k + 1))
            out.append(Stage(f"eps={e:g}", "pde", e, k + 1, False, steps[k], trainable,
                             first if k == 0 else later))
        if dd:
            if self.options["gate_steps"]:
                out.append(Stage("gate", "gate", eps[-1], len(eps), True,
                                 self.options["gate_steps"], ("gate",), GATE_LEARNING_RATE))
            trainable = base + tuple(f"stage_{j}" for j in range(len(eps) - 1)) + (
                "experts", "gate")
            out.append(Stage(f"dd Q={self.subdomains()}", "pde", eps[-1], len(eps), True,
                             steps[-1], trainable, later))
        return out

    def modes(self):
        """The resonant modes split off G (``problems.modes``), or None."""
        width = self.options["modes"]
        if not width:
            return None
        from ..problems.modes import ResonantModes, medium_of

        high = self.trained_params["k2"]["high"] if "k2" in self.trained_params else self.fixed_params["k2"]
        return ResonantModes.for_range(self.dim, width, high, medium_of(self.preset, self.fixed_params),
                                       self.options["modes_window"])

    def split(self):
        """The closed-form part split off G (``problems.split``), or None."""
        from ..problems.split import combine

        free = None
        if self.options["free_space"]:
            from ..problems.freespace import FreeSpace

            free = FreeSpace(self.preset, min(self.epsilons()))
        return combine([free, self.modes()])

    def to_dict(self):
        return {"problem": self.problem, "fixed_params": self.fixed_params,
                "trained_params": self.trained_params, "anchor_params": self.anchor_params,
                "options": {k: list(v) if isinstance(v, tuple) else v
                            for k, v in self.options.items()},
                "stages": [asdict(s) for s in self.stages()]}

    def fingerprint(self):
        """What must match for a checkpoint to be resumed by this configuration."""
        record = self.to_dict()
        # new_branches acts only when a stage starts: a run resumed with another value uses it from
        # its next stage on (the training record keeps the history of the losses)
        for key in ("output", "checkpoint", "checkpoint_minutes", "checkpoint_steps", "resume", "export",
                    "progress", "threads", "new_branches"):
            record["options"].pop(key, None)
        # an option added later counts only when used, so earlier runs' checkpoints still resume
        for key, off in LATER_OPTIONS.items():
            if record["options"].get(key) == off:
                record["options"].pop(key)
        return json.dumps(record, sort_keys=True)


def from_options(database=None):
    """The configuration from the options database: -problem, the preset's -NAME values, -train_*."""
    problem_spec = (Option("problem", "choice", "", "the PDE preset", choices=tuple(problems.names())),)
    name = read(problem_spec, database=database)["problem"]
    if not name:
        raise OptionError(f"-problem is required; choose one of {', '.join(problems.names())}")
    preset = problems.get(name)
    options = read(SPECS, prefix="train_", database=database)
    trained = parse_ranges(options["param"])
    for key in trained:
        if key not in preset.param_features:
            raise OptionError(f"-train_param: {name} cannot take {key!r} as a network input "
                              f"(parametric inputs: {', '.join(preset.param_features) or 'none'})")
    fixed_specs = tuple(Option(k, float, v, f"parameter {k} of {name}")
                        for k, v in preset.params.items() if k not in trained)
    fixed = preset.resolve(read(fixed_specs, database=database))
    fixed = {k: v for k, v in fixed.items() if k not in trained}
    anchors = parse_anchor_values(options["anchor_params"])
    if set(anchors) != set(trained):
        if trained:
            raise OptionError(f"-train_anchor_params must give anchor values for "
                              f"{', '.join(trained)}")
        raise OptionError("-train_anchor_params is only for parametric models (-train_param)")
    if options["modes"]:
        from ..problems.modes import check_resonant

        try:
            check_resonant(preset, fixed)
        except ValueError as err:
            raise OptionError(f"-train_modes {options['modes']:g}: {err}") from None
    if options["free_space"]:
        from ..problems.freespace import check_free_space

        try:
            check_free_space(preset, fixed)
        except ValueError as err:
            raise OptionError(f"-train_free_space: {err}") from None
    return TrainConfig(name, fixed, trained, anchors, options)

