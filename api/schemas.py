"""Request and response bodies. Money is a decimal string in major units on the way out."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema


def _amount_type(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal string such as \"100.50\" or a JSON number")
    return value


AmountIn = Annotated[
    Any,
    BeforeValidator(_amount_type),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": r"^\d{1,7}(\.\d{1,4})?$"},
                              {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000}],
                    "examples": ["100.50"],
                    "description": "major units, exact, more than 0 and at most MAX_AMOUNT "
                                   "(1,000,000); at most the currency's decimal places"}),
]
Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", examples=["USD"],
                                description="ISO 4217 alphabetic code, upper case; an unknown "
                                            "code is refused with 400 INVALID_CURRENCY")]
Ident = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]
T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WalletCreate(Strict):
    user_id: Ident
    currency: Currency


class WalletPublic(BaseModel):
    id: str
    user_id: str
    currency: str
    balance: str = Field(description="below zero only through a dispute")
    held: str
    available: str
    disputed: str = Field(description="what open disputes took from the wallet")
    restricted: bool = Field(description="the balance is below zero (a dispute took it there): "
                                         "no payment or withdrawal until it is back")
    version: int
    created_at: str
    updated_at: str


class DepositCreate(Strict):
    amount: AmountIn


class DepositPublic(BaseModel):
    id: str
    wallet_id: str
    amount: str
    currency: str
    balance_after: str
    created_at: str


class TransactionPublic(BaseModel):
    id: int
    type: str
    amount: str
    balance_after: str | None
    payment_id: str | None
    created_at: str


class PaymentCreate(Strict):
    user_id: Ident
    service_id: Ident
    amount: AmountIn
    currency: Currency
    description: str | None = Field(default=None, max_length=500)
    reference: str | None = Field(default=None, max_length=128)
    metadata: dict[str, str] | None = Field(default=None, max_length=50)
    capture_method: Literal["automatic", "manual"] = Field(
        default="automatic", description="automatic: charged at once; manual: authorized now, "
        "captured (all or less) with `POST /v1/payments/{id}/capture` before `capture_before`")
    capture_before: AwareDatetime | None = Field(
        default=None, description="manual only (RFC 3339): when an uncaptured authorization is "
        "voided and the payment expires; default now + AUTHORIZATION_TTL_SECONDS (7 days), at "
        "most that, at least 5 s ahead")


class CaptureCreate(Strict):
    amount: AmountIn | None = Field(default=None, description="at most the authorized amount; "
                                    "default: all of it")


class Failure(BaseModel):
    code: str
    message: str


class PaymentLinks(BaseModel):
    self: str
    events: str
    temporal_ui: str


class PaymentPublic(BaseModel):
    id: str
    status: str
    user_id: str
    service_id: str
    wallet_id: str | None
    amount: str
    fee: str
    currency: str
    description: str | None
    reference: str | None
    metadata: dict[str, Any] | None
    failure: Failure | None
    manual_retries: int
    max_manual_retries: int
    amount_refunded: str
    gateway_reference: str | None
    connector: str | None = Field(default=None, description="the processor the payment is (or "
                                  "was) charged at: its route's first, or where it failed over")
    routing_reason: str | None = Field(default=None, description="why: the routing rule, split "
                                       "bucket or default order that chose its route")
    capture_method: str = "automatic"
    capture_before: str | None = None
    amount_authorized: str | None = Field(default=None, description="manual capture: what the "
                                          "processor authorized")
    amount_captured: str | None = Field(default=None, description="what was charged: all of "
                                        "it, or (manual) what was captured")
    next_action: dict[str, str] | None = Field(
        default=None, description="requires_action (3-D Secure): `{\"type\": "
        "\"redirect_to_url\", \"url\": ...}`, where the customer authenticates")
    created_at: str
    updated_at: str
    links: PaymentLinks


class Instrument(Strict):
    """Where money comes from (a top-up's source) or goes to (a withdrawal's destination): a
    tokenized card or bank account at the processor (never a card number)."""

    type: Literal["card", "bank_account"]
    token: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                       examples=["tok_visa"])


class TopUpCreate(Strict):
    amount: AmountIn
    source: Instrument


class WithdrawalCreate(Strict):
    amount: AmountIn
    destination: Instrument


class TransferLinks(BaseModel):
    self: str
    wallet: str
    temporal_ui: str


class TransferPublic(BaseModel):
    """A top-up (`tup_...`: the source is charged amount + fee, the wallet credited the amount) or
    a withdrawal (`wdr_...`: amount + fee held, the amount paid out to the destination)."""

    id: str
    status: str = Field(description="pending (accepted, not yet opened), processing, succeeded, "
                                    "failed")
    wallet_id: str
    amount: str
    fee: str
    currency: str
    failure: Failure | None = Field(description="gateway_declined, gateway_unavailable, "
                                                "insufficient_funds (withdrawals)")
    gateway_reference: str | None
    connector: str | None
    created_at: str
    updated_at: str
    links: TransferLinks


class EventPublic(BaseModel):
    id: int
    type: str
    data: dict[str, Any]
    created_at: str


class Page(BaseModel, Generic[T]):
    """Every list answers in this shape (docs/contract.md, Lists)."""

    items: list[T]
    has_more: bool = Field(description="whether more items follow this page")
    next_cursor: str | None = Field(
        description="pass as `starting_after` for the next page (the last item's id); "
                    "null when `has_more` is false")
    limit: int
    offset: int = Field(description="items skipped (the `offset` parameter, where a list takes "
                                    "it); 0 on the cursor path")
    total: int | None = Field(description="all matching items, on the offset path of lists that "
                                          "count; null on the cursor path (`starting_after`), "
                                          "which does not count")


class HealthPublic(BaseModel):
    status: str
    checks: dict[str, str]


class RefundCreate(Strict):
    amount: AmountIn | None = None
    reason: str | None = Field(default=None, max_length=200)


class RefundPublic(BaseModel):
    id: str
    payment_id: str
    amount: str
    fee: str
    currency: str
    status: str
    reason: str | None
    failure_message: str | None = None
