"""signing_api.web.billing."""
