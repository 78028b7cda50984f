"""HTTP routes of the filing domain: reports, their signatures, agencies and their answers."""
