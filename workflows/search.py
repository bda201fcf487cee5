"""The search attributes, declared once: the workflows set them, `make dev`, docker compose and the
tests register them, the API starts payments with them and operators query them
(`temporal workflow list --query "PaymentStatus='failed'"`). Plain text in Temporal's index: never
put a secret or personal data here."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
PAYMENT_USER_ID = SearchAttributeKey.for_keyword("PaymentUserId")  # an HMAC of the user id
# The Payment* attributes describe a money movement: a payment (and its refunds, by PaymentId),
# a top-up or a withdrawal (their own id as PaymentId); WorkflowType tells which.
PAYMENT_ID = SearchAttributeKey.for_keyword("PaymentId")  # the money movement's id
REFUND_STATUS = SearchAttributeKey.for_keyword("RefundStatus")
REFUND_AMOUNT = SearchAttributeKey.for_float("RefundAmount")  # major units, for queries only
PAYMENT_CURRENCY = SearchAttributeKey.for_keyword("PaymentCurrency")
PAYMENT_AMOUNT = SearchAttributeKey.for_float("PaymentAmount")  # major units, for queries only
PAYMENT_FAILURE_CODE = SearchAttributeKey.for_keyword("PaymentFailureCode")
RECONCILIATION_CRITICAL = SearchAttributeKey.for_int("ReconciliationCritical")
TRANSFER_STATUS = SearchAttributeKey.for_keyword("TransferStatus")  # top-ups and withdrawals
DISPUTE_STATUS = SearchAttributeKey.for_keyword("DisputeStatus")
DISPUTE_TOP_UP_ID = SearchAttributeKey.for_keyword("DisputeTopUpId")  # the disputed top-up

KEYS: list[SearchAttributeKey[Any]] = [PAYMENT_STATUS, PAYMENT_USER_ID, PAYMENT_CURRENCY,
                                       PAYMENT_AMOUNT, PAYMENT_FAILURE_CODE,
                                       RECONCILIATION_CRITICAL, TRANSFER_STATUS, PAYMENT_ID,
                                       REFUND_STATUS, REFUND_AMOUNT, DISPUTE_STATUS,
                                       DISPUTE_TOP_UP_ID]
_CLI_TYPES = {SearchAttributeIndexedValueType.KEYWORD: "Keyword",
              SearchAttributeIndexedValueType.DOUBLE: "Double",
              SearchAttributeIndexedValueType.INT: "Int"}
# name -> the `temporal` CLI's type (`--search-attribute PaymentStatus=Keyword`)
SEARCH_ATTRIBUTES = {key.name: _CLI_TYPES[key.indexed_value_type] for key in KEYS}
