"""HTTP routes of the dispute procedure (§8): cases opened by commissions and officers."""
