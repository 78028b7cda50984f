"""The §8 dispute procedure as an engine: results as immutable values. No Flask, no hsm.

Empty until the dispute issue lands; see docs/architecture.md.
"""
