"""What a running job knows about its claim."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bot.store import Claim


@dataclass
class Lease:
    """A claimed job; ``lost`` is set when the lease is gone and the job must stop."""

    claim: Claim
    owner: str
    lost: threading.Event = field(default_factory=threading.Event)
