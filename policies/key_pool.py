"""The cloud key pool (issue #16): key pairs made in ``tamga-cloud`` before anyone asks.

Generating a cloud key pair is most of a cloud certificate's issuance time (docs/benchmarks.md),
so ``tamga worker`` keeps a pool of ready key pairs per key spec and issuance takes one instead
of generating it. The keys are made exactly as issuance makes them (sensitive, never
extractable, sign-only); a pooled key is handed out once and never returns to the pool.

| what            | value                                                                   |
|-----------------|-------------------------------------------------------------------------|
| target size     | ec-p256: 200 (the default cloud key), rsa-2048: 20                      |
| maximum age     | 30 days: older keys are destroyed, never certified                      |
| work per pass   | at most 4 keys and about 0.25 s of generation per worker pass           |

Why a maximum age: a key's life starts when it is generated, not when it is certified; capping
the time it waits keeps every cloud key's whole life close to its certificate's validity, and
the pool turns over instead of keeping keys made under an old token or policy. Why a small
pass: the worker also delivers reports and keeps CRLs and OCSP fresh, and a pass that spent
seconds on key generation would delay them; the pool refills over many short passes (200
P-256 keys at 4 per pass and one pass a second when idle: under a minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from policies.cert_profiles import CLOUD_ALLOWED_KEY_SPECS
from policies.keys import KeySpec

__all__ = ["KEY_POOL", "KeyPoolPolicy"]


@dataclass(frozen=True)
class KeyPoolPolicy:
    """How many ready cloud keys to keep per key spec, for how long, and how fast to make them.

    ``targets`` pairs a key spec name (``KeySpec.name``: "ec-p256", "rsa-2048") with the pool
    size to keep; a spec not listed is never pooled (issuance generates it).
    """

    targets: tuple[tuple[str, int], ...]
    max_age: timedelta
    keys_per_pass: int  # key pairs one worker pass generates at most
    pass_budget: timedelta  # and it starts no new key once this much time is spent
    expire_batch: int = 100  # expired keys destroyed per pass at most

    def __post_init__(self) -> None:
        names = [name for name, _ in self.targets]
        if len(set(names)) != len(names):
            raise ValueError("a key spec is listed twice in the pool targets")
        allowed = {spec.name for spec in CLOUD_ALLOWED_KEY_SPECS}
        for name, size in self.targets:
            if name not in allowed:
                raise ValueError(f"{name!r} is not a cloud key spec ({sorted(allowed)})")
            if size < 0:
                raise ValueError(f"the pool target of {name} must not be negative")
        if self.max_age <= timedelta(0) or self.pass_budget <= timedelta(0):
            raise ValueError("max_age and pass_budget must be positive")
        if self.keys_per_pass < 1 or self.expire_batch < 1:
            raise ValueError("keys_per_pass and expire_batch must be at least 1")

    @property
    def specs(self) -> tuple[KeySpec, ...]:
        """The pooled key specs, in the order of ``targets``."""
        return tuple(KeySpec.parse(name) for name, _ in self.targets)

    def target(self, spec_name: str) -> int:
        """The pool size to keep for ``spec_name`` (0 when it is not pooled)."""
        return dict(self.targets).get(spec_name, 0)


KEY_POOL = KeyPoolPolicy(
    targets=(("ec-p256", 200), ("rsa-2048", 20)),
    max_age=timedelta(days=30),
    keys_per_pass=4,
    pass_budget=timedelta(milliseconds=250),
)
