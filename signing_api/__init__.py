"""The composition root: the Flask app and its HTTP routes, gunicorn, the ``tamga`` CLI.

Only this package imports Flask and wires the domains (``ca``, ``crl``, ``billing``,
``filing``) to the database and the HSM.
"""
