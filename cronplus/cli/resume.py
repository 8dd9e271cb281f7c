"""`cronplus resume JOB... | --all`: cli/pause.py, the other way."""

from cronplus.cli.pause import HELP_RESUME as HELP
from cronplus.cli.pause import add_arguments
from cronplus.cli.pause import resume as run

__all__ = ["HELP", "add_arguments", "run"]
