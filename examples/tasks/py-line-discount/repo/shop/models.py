"""Orders and their lines. Prices are integers in cents, never floats."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OrderLine:
    """One product on an order."""

    sku: str
    unit_price_cents: int
    quantity: int = 1

    def __post_init__(self) -> None:
        if self.unit_price_cents < 0:
            raise ValueError("unit_price_cents must not be negative")
        if self.quantity < 1:
            raise ValueError("quantity must be at least 1")


@dataclass
class Order:
    """A customer's order."""

    customer: str
    lines: list[OrderLine] = field(default_factory=list)
