"""``python -m budcluster.catalogue check [PATH]``: validate a catalogue file."""

from budcluster.catalogue.cli import app

if __name__ == "__main__":
    app(prog_name="python -m budcluster.catalogue")
