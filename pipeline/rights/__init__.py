"""Viewer rights: erasure bookkeeping and receipts (Art. 17), data export (Art. 15/20)."""

from pipeline.rights.ledger import PENDING, ErasureLedger, Pending
from pipeline.rights.receipts import build_receipt, remains

__all__ = ["PENDING", "ErasureLedger", "Pending", "build_receipt", "remains"]
