"""A progress bar on a terminal (rich), a no-op elsewhere."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """Yields ``tick(done, total)`` that updates a bar (throttled), or None when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as prog:
        task = prog.add_task(label, total=None)
        last = [0]

        def tick(done: int, total: int) -> None:
            if done - last[0] >= max(1, total // 200) or done == total:
                last[0] = done
                prog.update(task, completed=done, total=total)

        yield tick
