"""``python -m agency_stub`` is ``tamga-agency``."""

from agency_stub.cli import main

raise SystemExit(main())
