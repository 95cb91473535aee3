"""``embedloop-demo``: play the continual-learning story on real data and write an HTML report.

A showcase that drives embedloop from outside (it starts ``embedloop serve`` and ``embedloop
daemon``, sends traffic and feedback over HTTP, approves and rolls back through the admin API);
it needs the ``demo`` extra (matplotlib) for its charts.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True, soft_wrap=True)
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def demo(
    dataset: Path = typer.Option(..., help="a BEIR folder whose queries carry a group field (e.g. source)"),
    out: Path = typer.Option(Path("embedloop-demo"), help="folder for the report, logs and the demo's own state"),
    quick: bool = typer.Option(False, help="a small subset: a few minutes"),
    group_field: str = typer.Option("source", help="query field that splits traffic before / after the shift"),
    port: int = typer.Option(0, help="service port on 127.0.0.1 (0: a free one)"),
    sts: Optional[Path] = typer.Option(None, help="STS-B style jsonl for the retention gate"),
) -> None:
    """Play the continual-learning story on real data and write an HTML report."""
    from embedloop.client import ClientError
    from embedloop.core.env import apply_defaults
    from embedloop.demo.story import Demo, DemoFailed

    if not (dataset / "corpus.jsonl").is_file():
        fail(f"{dataset} is not a BEIR folder (no corpus.jsonl)")
    if port == 0:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    out = out.resolve()
    apply_defaults(out / "state")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it like Ctrl-C: children too
    with console.status("starting") as line:
        runner = Demo(dataset.resolve(), out, quick, group_field, port, sts.resolve() if sts else None,
                      lambda text: line.update(text))
        try:
            summary = runner.run()
        except (DemoFailed, ClientError) as exc:
            fail(f"{exc} (logs and the report so far in {out})")
        except KeyboardInterrupt:
            fail(f"stopped; the service and daemon are down, the state in {out / 'state'} is consistent; "
                 f"the report so far is in {out}", code=130)
    console.print_json(data=summary["headline"])
    console.print(f"report: [bold]{summary['report']}[/bold]")


def main() -> None:
    app()
