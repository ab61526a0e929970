"""Runner plugins: load that runs while faults happen (``rally``)."""
