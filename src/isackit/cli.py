r"""The ``isackit`` command line (typer + rich): a thin layer over :mod:`isackit.experiments`.

    isackit run [NAME|FILE] [--quick] [--trials N] [--seed S] [--device cuda] [--engine ray
                [--address HOST:PORT]] [--out DIR] [--resume] [--set key=value ...]
    isackit list
    isackit show RUN
    isackit plot RUN

User errors (unknown experiment or key, wrong type, bad ``--set``, missing file, unavailable
device, …) print one line and exit with code 2; an interrupted run exits with 130 and keeps
every finished work unit on disk (continue it with ``--resume``).
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table

from . import __version__

app = typer.Typer(
    name="isackit",
    help="ISAC and radio positioning under hardware impairments: run experiments, show results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out_console = Console()
err_console = Console(stderr=True)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
_ARGV: list[str] = []  # the arguments main() was called with (for the --resume hint)


def _sigterm_as_interrupt():
    """Treat SIGTERM (``kill``, a batch scheduler) like Ctrl-C so the run says where it stopped;
    returns the previous handler (None when not in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"isackit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """isackit: integrated sensing and communication experiments."""


def _width(frame) -> int:
    from .experiments.report import _fmt

    return sum(max([len(str(c))] + [len(_fmt(v)) for v in frame[c]]) + 3 for c in frame.columns) + 1


def _print_table(df, meta, title: str | None = None) -> None:
    """Metrics as columns when that fits the terminal, else the tidy long table."""
    from .experiments.report import _fmt, metric_table, param_columns

    bounds = set(meta.get("bounds", []))
    frame = metric_table(df, meta)
    if _width(frame) > out_console.width:
        frame = df[param_columns(df) + ["method", "metric", "value", "n_trials"]]
    table = Table(title=title, show_lines=False)
    for c in frame.columns:
        table.add_column(str(c), justify="right" if frame[c].dtype.kind in "fiu" else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        is_bound = getattr(row, "method", None) in bounds
        table.add_row(*(_fmt(v) for v in row), style="dim" if is_bound else None)
    out_console.print(table)


@app.command()
def run(
    target: Annotated[str | None, typer.Argument(metavar="[NAME|FILE]",
                                                 help="Catalogue name (see `isackit list`) or a .toml spec; "
                                                      "default: the headline experiment.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Use the spec's \\[quick] (CI-sized) settings.")] = False,
    smoke: Annotated[bool, typer.Option("--smoke", help="Tiny end-to-end check: \\[quick] then the spec's "
                                                        "\\[smoke] settings (checks that it runs, not the "
                                                        "outcomes).")] = False,
    trials: Annotated[int | None, typer.Option(help="Monte Carlo trials per sweep point.")] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed.")] = None,
    device: Annotated[str | None, typer.Option(help="Torch device: cpu, cuda, cuda:1 …")] = None,
    engine: Annotated[str, typer.Option(help="inprocess (default) or ray.")] = "inprocess",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --engine ray).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/<name>/<time>-<hash>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest run with the same config "
                                                          "(or --out DIR), computing only missing units.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                   help="Override a spec value (dotted key, TOML value); "
                                                        "repeatable.")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where new run folders go.")] = Path("runs"),
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write figures.")] = True,
) -> None:
    """Run an experiment (sweep) and write its run folder; print its summary table."""
    from .experiments import make_engine, parse_override, resolve_spec, run_experiment

    overrides = [parse_override(s) for s in (set_ or [])]
    for key, value in (("trials", trials), ("seed", seed), ("device", device)):
        if value is not None:
            overrides.append((key, value))
    spec = resolve_spec(target, quick=quick, smoke=smoke, overrides=overrides)
    eng = make_engine(engine, address)
    state: dict = {}

    def on_start(store, reused, total):
        state.update(store=store, total=total)
        verb = "resuming" if reused else "running"
        typer.echo(f"{verb} {spec.name} ({spec.experiment.name}) -> {store.path}"
                   + (f"  ({reused}/{total} units already done)" if reused else f"  ({total} units)"), err=True)

    previous = _sigterm_as_interrupt()
    try:
        result = run_experiment(spec, engine=eng, out=out, resume=resume, runs_dir=runs_dir,
                                progress=True, figures=plots, on_start=on_start)
    except KeyboardInterrupt:
        store = state.get("store")
        if store is not None:
            n = len(store.done_ids())
            args = [a for a in _ARGV if a != "--resume"]
            if not out:
                args += ["--runs-dir", str(runs_dir)] if runs_dir != Path("runs") and "--runs-dir" not in args else []
            typer.echo(f"interrupted: {n}/{state['total']} units are stored in {store.path}; "
                       f"continue with: isackit {shlex.join(args)} --resume", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    _print_table(result.results, result.meta, title=f"{spec.name}: {spec.config.description}")
    typer.echo(f"run folder: {result.path}  (computed {result.computed} units, reused {result.reused})")


@app.command("list")
def list_() -> None:
    """List the experiments in the catalogue, one line each."""
    from .experiments.registry import catalogue, catalogue_description, default_experiment

    default = default_experiment()
    table = Table(show_header=True, box=None)
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, path in catalogue().items():
        table.add_row(name + (" (default)" if name == default else ""), catalogue_description(path))
    out_console.print(table)


@app.command()
def show(run: Annotated[str, typer.Argument(help="Run folder, or an experiment name (its latest run).")],
         runs_dir: Annotated[Path, typer.Option(help="Where run folders are.")] = Path("runs")) -> None:
    """Print the summary table of a run."""
    from .experiments import find_run, load_results

    path = find_run(run, runs_dir)
    df, meta = load_results(path)
    _print_table(df, meta, title=f"{meta.get('name', '')}: {meta.get('description', '')}")
    typer.echo(f"run folder: {path}")


@app.command()
def plot(run: Annotated[str, typer.Argument(help="Run folder, or an experiment name (its latest run).")],
         runs_dir: Annotated[Path, typer.Option(help="Where run folders are.")] = Path("runs")) -> None:
    """(Re)draw a run's figures (PNG and SVG) into its figures/ folder."""
    from .experiments import find_run, load_results
    from .plotting import plot_results

    path = find_run(run, runs_dir)
    df, meta = load_results(path)
    for p in plot_results(df, meta, path / "figures", run_dir=path):
        typer.echo(str(p))


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def _click_exceptions():
    try:  # typer >= 0.20 vendors click
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions
    return exceptions


def _fail(msg: str, code: int = EXIT_USER_ERROR) -> None:
    sys.stderr.write(f"error: {_one_line(msg)}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app, turning user errors into one line + exit 2."""
    from .experiments.config import ExperimentError

    global _ARGV
    _ARGV = list(sys.argv[1:] if argv is None else argv)
    cx = _click_exceptions()
    try:
        rc = app(args=argv, prog_name="isackit", standalone_mode=False)
    except ExperimentError as exc:
        _fail(str(exc))
    except cx.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(0)
    except cx.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code if exc.exit_code else EXIT_USER_ERROR)
    except (typer.Exit, click.exceptions.Exit) as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, click.Abort, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
