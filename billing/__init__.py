"""Prepaid balances as a double-entry ledger; payments in; charges; documents out.

Empty until its issue (#3).
"""
