"""Server-rendered pages (HTML, no JavaScript): the dispute commission's page (``disputes``)."""
