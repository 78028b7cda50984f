"""The HTTP edge: blueprints by area, the problem table, authentication, OpenAPI."""
