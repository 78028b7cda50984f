"""Money the operator receives itself: bank statements, the suspense list, the cash desk.

* :mod:`billing.bank.statements` reads a bank statement (CSV) and imports each line exactly
  once: credited to a subscriber, or moved to the suspense account;
* :mod:`billing.bank.suspense` lists the lines in suspense and assigns one to a subscriber;
* :mod:`billing.bank.cash` records a cash-desk receipt;
* :mod:`billing.bank.lines` is the ``bank_statement_lines`` row and its view;
  :mod:`billing.bank.values` parses amounts and dates as banks and cashiers write them.

The names other packages use are re-exported here.
"""

from billing.bank.cash import record_cash
from billing.bank.lines import BankStatementLine, LineInfo
from billing.bank.statements import (
    ImportInterrupted,
    ImportSummary,
    import_statement,
    parse_statement,
)
from billing.bank.suspense import assign, suspense_lines
from billing.bank.values import business_midnight, parse_amount

__all__ = [
    "BankStatementLine",
    "ImportInterrupted",
    "ImportSummary",
    "LineInfo",
    "assign",
    "business_midnight",
    "import_statement",
    "parse_amount",
    "parse_statement",
    "record_cash",
    "suspense_lines",
]
