"""Real CPU inference runtimes, built or installed once per machine and cached."""

__all__: list[str] = []
