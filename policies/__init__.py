"""Pure rules as data: key algorithms, CA profiles, roles, tariffs, time windows.

Nothing here performs I/O or imports another Tamga package; every other package reads its
rules from here so that a rule change is a data change.
"""
