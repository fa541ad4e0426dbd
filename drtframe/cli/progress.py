"""The progress bar every long command shows: items done, items per second, time left."""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from .console import console


class ItemsPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} items/s" if task.speed else "- items/s", style="progress.data.speed")


def item_progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), ItemsPerSecond(),
                    TimeRemainingColumn(), console=console, transient=True)
