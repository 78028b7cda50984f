"""signing_api.web.openapi."""
