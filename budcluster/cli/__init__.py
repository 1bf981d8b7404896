"""The ``budcluster`` command line: local operations."""
