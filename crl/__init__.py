"""Revocation status for relying parties: CRLs (and OCSP) built from ca/ data.

Empty until its issue (#4).
"""
