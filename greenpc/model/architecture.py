"""The shape of an alphaMSNN (eqs. 27, 28, 39-41), as plain data that a weight file records.

JAX-free: the weight-file reader validates arrays against the skeleton that ``network.py`` rebuilds
from this record.
"""
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Architecture:
    """Sizes and scales of the network.

    Attributes
    ----------
    dim : spatial dimension d (x and y each have d coordinates).
    n_features : number of parameter inputs (e.g. 2 for the rotated Laplacian: cos 2theta, sin 2theta).
    epsilons : the source widths eps_1 > eps_2 > ... of the stages; one near and one middle branch each.
    widths : hidden width of the near/middle branches of each stage.
    depth : hidden layers of every branch.
    far_width : hidden width of the far-field branch (alpha = beta = 0), shared by all stages.
    aux_width, aux_depth : the scale networks alpha(y), beta(y) and the gate r(y).
    alpha0 : initial amplitude exponent of each stage's near-field branch (eq. 26).
    subdomains : Q experts of the last stage mixed by the softmax gate (eqs. 40-41); 1 = no DD.
    gate_input : "source" (the gate sees y) or "params" (it sees the parameter features).
    boundary_layer : multiply G by a factor that vanishes on the boundary with a learnable layer width
        per face (an extension of the paper for convection-dominated problems, see network.py).
    """

    dim: int
    epsilons: tuple
    widths: tuple
    alpha0: tuple
    n_features: int = 0
    depth: int = 3
    far_width: int = 50
    aux_width: int = 5
    aux_depth: int = 2
    subdomains: int = 1
    gate_input: str = "source"
    boundary_layer: bool = False

    def __post_init__(self):
        object.__setattr__(self, "epsilons", tuple(float(e) for e in self.epsilons))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "alpha0", tuple(float(a) for a in self.alpha0))
        if not len(self.epsilons) == len(self.widths) == len(self.alpha0):
            raise ValueError("architecture: epsilons, widths and alpha0 need one entry per stage, got "
                             f"{len(self.epsilons)}, {len(self.widths)}, {len(self.alpha0)}")
        if any(b >= a for a, b in zip(self.epsilons, self.epsilons[1:])):
            raise ValueError(f"architecture: epsilons must decrease, got {self.epsilons}")
        if not all(0 < e < 1 for e in self.epsilons):
            raise ValueError(f"architecture: epsilons must lie in (0, 1), got {self.epsilons}")
        if self.subdomains < 1:
            raise ValueError(f"architecture: subdomains must be >= 1, got {self.subdomains}")
        if self.gate_input not in ("source", "params"):
            raise ValueError(f"architecture: gate_input is 'source' or 'params', got {self.gate_input!r}")
        if self.gate_input == "params" and self.n_features == 0:
            raise ValueError("architecture: a gate over parameters needs parameter features")

    @property
    def stages(self):
        return len(self.epsilons)

    @property
    def domain_decomposition(self):
        return self.subdomains > 1

    def to_dict(self):
        out = asdict(self)
        out["epsilons"], out["widths"], out["alpha0"] = (list(out[k]) for k in
                                                         ("epsilons", "widths", "alpha0"))
        return out

    @classmethod
    def from_dict(cls, record):
        known = set(cls.__dataclass_fields__)
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"architecture: unknown fields {sorted(unknown)}")
        return cls(**record)
