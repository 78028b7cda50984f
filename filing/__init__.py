"""Reports: signatures collected by role, charged, delivered to agencies, receipts.

Empty until its issue.
"""
