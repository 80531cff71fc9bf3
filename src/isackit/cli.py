r"""The ``isackit`` command line (typer + rich): a thin layer over :mod:`isackit.experiments`.

    isackit run [NAME|FILE] [--quick] [--trials N] [--seed S] [--device cuda] [--engine ray
                [--address HOST:PORT]] [--out DIR] [--resume] [--set key=value ...]
    isackit list
    isackit show RUN
    isackit plot RUN

User errors (unknown experiment or key, wrong type, NaN/inf, an empty sweep, a run too large
to fit, bad ``--set``, a missing, unreadable or non-UTF-8 file, an unwritable output folder,
an unavailable device or Ray cluster, a damaged results file, a run folder in use by another
process, …) print one line and exit with code 2, leaving no empty run folder behind; an
interrupted run exits with 130 and keeps every finished work unit on disk (continue it with
``--resume``).  ``isackit run`` and ``isackit show`` print a compact table (one row per
method, key metrics as columns, bounds beside them) and the headline ratios; the full table
is in the run folder's ``summary.md`` (``isackit show --all`` prints it).

Importing this module imports neither torch nor the experiments (``isackit --help`` is fast);
commands import what they need.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

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
# Piped output (make demo | tee, CI logs) has no terminal width; rich would wrap the summary
# table at 80 columns, so it gets 160 unless COLUMNS says otherwise.
out_console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
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


def _rich_table(frame, bounds: set, title: str | None = None) -> Table:
    from .experiments.report import _fmt

    table = Table(title=title, show_lines=False)
    for c in frame.columns:
        table.add_column(str(c), justify="right" if frame[c].dtype.kind in "fiu" else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        is_bound = getattr(row, "method", None) in bounds
        table.add_row(*(_fmt(v) for v in row), style="dim" if is_bound else None)
    return table


def _print_table(df, meta, title: str | None = None) -> None:
    """The full results: metrics as columns when that fits the terminal, else the tidy long table."""
    from .experiments.report import metric_table, param_columns

    frame = metric_table(df, meta)
    if _width(frame) > out_console.width:
        frame = df[param_columns(df) + ["method", "metric", "value", "n_trials"]]
    out_console.print(_rich_table(frame, set(meta.get("bounds", [])), title))


def _print_summary(table, lines, meta, title: str | None = None) -> None:
    """The compact table (bound rows dimmed) and the headline lines."""
    if table is not None and len(table):
        out_console.print(_rich_table(table, set(meta.get("bounds", [])), title))
    elif title:
        out_console.print(title)
    for line in lines or []:
        out_console.print(f"  {line}", highlight=False)


def _warn(msg: str) -> None:
    err_console.print(f"warning: {msg}", highlight=False, soft_wrap=True)


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
                                progress=True, figures=plots, on_start=on_start, warn=_warn)
    except KeyboardInterrupt:
        store = state.get("store")
        if store is not None and not store.path.exists():
            typer.echo("interrupted before any unit finished; nothing was kept", err=True)
        elif store is not None:
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
    _print_summary(result.summary, result.headlines, result.meta, title=f"{spec.name}: {spec.config.description}")
    if result.models:
        typer.echo(f"model files used: {len(result.models)} (listed with their SHA-256 in models.json)")
    typer.echo(f"full table: {result.path / 'summary.md'}")
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


def _experiment_of(meta):
    """The registered experiment class named in a run's metadata, or None when it is not
    available here (the registry only: a run folder never decides which code is imported)."""
    from .experiments import ExperimentError, get_experiment

    try:
        return get_experiment(str(meta.get("experiment", "")))
    except ExperimentError:
        return None


@app.command()
def show(run: Annotated[str, typer.Argument(help="Run folder, or an experiment name (its latest finished run).")],
         runs_dir: Annotated[Path, typer.Option(help="Where run folders are.")] = Path("runs"),
         all_: Annotated[bool, typer.Option("--all", help="Print every result row, not the compact "
                                                          "table.")] = False) -> None:
    """Print a run's compact table and headline ratios (``--all``: every result)."""
    from .experiments import find_run, load_results, summarize

    path = find_run(run, runs_dir)
    df, meta = load_results(path)
    title = f"{meta.get('name', '')}: {meta.get('description', '')}"
    if all_:
        _print_table(df, meta, title=title)
    else:
        table, lines = summarize(_experiment_of(meta), df, meta, warn=_warn)
        _print_summary(table, lines, meta, title=title)
        typer.echo(f"full table: {path / 'summary.md'}")
    typer.echo(f"run folder: {path}")


@app.command()
def plot(run: Annotated[str, typer.Argument(help="Run folder, or an experiment name (its latest run).")],
         runs_dir: Annotated[Path, typer.Option(help="Where run folders are.")] = Path("runs")) -> None:
    """(Re)draw a run's figures (PNG and SVG) into its figures/ folder."""
    from .experiments import find_run, load_results
    from .experiments.plotting import plot_results

    path = find_run(run, runs_dir)
    df, meta = load_results(path)
    for p in plot_results(df, meta, path / "figures", run_dir=path):
        typer.echo(str(p))


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def _click_exceptions():
    """Click's exception classes: typer >= 0.20 vendors click (and does not install it);
    older typer versions depend on click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions
    return exceptions


def _exit_classes() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(Exit classes, Abort classes) of typer and, where typer still uses it, click."""
    exits: list[type] = [typer.Exit]
    aborts: list[type] = [typer.Abort, KeyboardInterrupt]
    try:
        import click  # only present when typer (older versions) or another package installs it
    except ImportError:
        pass
    else:
        exits.append(click.exceptions.Exit)
        aborts.append(click.exceptions.Abort)
    return tuple(exits), tuple(aborts)


def _with_value(exc, message: str) -> str:
    """Add the offending command-line value to a bad-parameter message (click's message
    names the option, not what the user typed)."""
    param = getattr(exc, "param", None)
    opts = list(getattr(param, "opts", []) or [])
    if not opts:
        return message
    for i, arg in enumerate(_ARGV):
        for opt in opts:
            if arg == opt and i + 1 < len(_ARGV):
                return message.replace(f"'{opt}'", f"'{opt}' (got {_ARGV[i + 1]!r})", 1)
            if arg.startswith(opt + "="):
                return message.replace(f"'{opt}'", f"'{opt}' (got {arg[len(opt) + 1:]!r})", 1)
    return message


def _fail(msg: str, code: int = EXIT_USER_ERROR) -> None:
    sys.stderr.write(f"error: {_one_line(msg)}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app, turning user errors into one line + exit 2."""
    from .experiments.errors import ExperimentError

    global _ARGV
    _ARGV = list(sys.argv[1:] if argv is None else argv)
    cx = _click_exceptions()
    exits, aborts = _exit_classes()
    try:
        rc = app(args=argv, prog_name="isackit", standalone_mode=False)
    except ExperimentError as exc:
        _fail(str(exc))
    except cx.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(0)
    except cx.BadParameter as exc:
        _fail(_with_value(exc, exc.format_message()), EXIT_USER_ERROR)
    except cx.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code if exc.exit_code else EXIT_USER_ERROR)
    except exits as exc:
        sys.exit(exc.exit_code)
    except aborts:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:  # a file or folder the user named or the disk: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
