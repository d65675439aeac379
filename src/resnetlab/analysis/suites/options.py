"""How one ``resnetlab reproduce SUITE`` was asked for: the suite, where, on what data, how long.

Saved as ``OUT/suite-{suite}.json`` (with the command line), so ``reproduce readme`` and
``--no-train`` rebuild a report from exactly the options its runs were trained with.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .registry import SUITES

# The registry's depth-generic CIFAR builders: not networks a suite can name.
GENERIC_BUILDERS = ("cifar_resnet", "cifar_plain")


@dataclass(frozen=True)
class SuiteOptions:
    suite: str
    out: Path = Path("results")
    data: str | None = None  # dataset spec exactly as given; None: the built-in synthetic set
    budget: float = 1.0  # fraction of the paper's 64k-iteration schedule
    seeds: int = 1  # seeds 0..seeds-1
    models: tuple[str, ...] = ()  # () = the suite's default set
    overrides: dict = field(default_factory=dict)  # recipe keys replaced after scaling (library/tests)

    def __post_init__(self) -> None:
        if self.suite not in SUITES:
            raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {self.suite!r}")
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) or not 0 < self.budget <= 1:
            raise ValueError(f"budget must be a fraction in (0, 1], got {self.budget!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be a positive integer, got {self.seeds!r}")
        allowed = self.allowed_models()
        unknown = [m for m in self.models if m not in allowed]
        if unknown:
            raise ValueError(
                f"models: {', '.join(unknown)} not part of suite {self.suite}; valid: {', '.join(allowed)}"
            )
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "models", tuple(self.models))

    def allowed_models(self) -> tuple[str, ...]:
        allowed = SUITES[self.suite].models
        if allowed is not None:
            return allowed
        from ...models import list_models

        return tuple(m for m in list_models() if m not in GENERIC_BUILDERS)

    @property
    def chosen_models(self) -> tuple[str, ...]:
        return self.models or SUITES[self.suite].default_models

    def command(self) -> str:
        """The exact command line that (re)produces this suite."""
        args = ["resnetlab", "reproduce", self.suite]
        if SUITES[self.suite].trains:
            if self.data is not None:
                args += ["--data", self.data]
            args += ["--budget", f"{self.budget:g}", "--seeds", str(self.seeds)]
        args += ["--out", str(self.out)]
        if self.models:
            args += ["--models", *self.models]
        return shlex.join(args)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        d["models"] = list(self.models)
        return d

    @classmethod
    def from_dict(cls, d: dict, out: Path | None = None) -> SuiteOptions:
        d = dict(d)
        d["models"] = tuple(d.get("models", ()))
        if out is not None:
            d["out"] = Path(out)
        return cls(**d)
