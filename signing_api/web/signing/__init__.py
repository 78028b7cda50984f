"""signing_api.web.signing."""
