"""signing_api.web.ca."""
