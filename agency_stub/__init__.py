"""A stand-in for a state agency's report gateway (tax service, Social Fund, statistics).

A separate HTTP process, not part of Tamga's layers: it speaks the agency wire protocol of
docs/agency-protocol.md from the agency's side, with its own CA and receipt-signing key, so that
Tamga's delivery and receipt verification are checked against code Tamga did not write.
import-linter forbids it to import any Tamga package, and any Tamga package to import it.
In production each agency's real gateway replaces it.
"""

__all__: list[str] = []
