"""signing_api.web.public."""
