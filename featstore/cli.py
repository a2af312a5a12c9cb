"""``featstore`` command line: a thin layer over the library functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from data_manifests.errors import FeatstoreError
from featstore.export_defaults import MGFN_DEFAULT_CROPS, OPENTAD_SUBSET_NAMES
from featstore.pixel_transform_config import DEFAULT_BLUR_SIGMA, PixelTransformConfig

# pyproject.toml's [project] name: every console script's --version reads this distribution's installed metadata
DISTRIBUTION = "latent-anonymization"
# the help panels, one set of names for every tool's commands (those that apply to a command)
DATA_PANEL, MODEL_PANEL, OBJECTIVE_PANEL, OPTIMIZATION_PANEL = "Data", "Model", "Objective", "Optimization"
PROTOCOL_PANEL, OUTPUT_PANEL = "Protocol", "Output"


def tool_app(tool: str, help: str, cls: type | None = None) -> typer.Typer:
    """A console script's app: ``-h`` as well as ``--help`` on it and on every subcommand, and ``--version``.

    Shared by the four tools (featstore, anonymize, evaluate, pipelines); ``cls`` is a custom click group.
    """
    app = typer.Typer(cls=cls, add_completion=False, no_args_is_help=True, help=help,
                      context_settings={"help_option_names": ["-h", "--help"]})  # subcommands inherit them

    def print_version(wanted: bool) -> None:
        if not wanted:
            return
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"{tool} {version(DISTRIBUTION)}")
        except PackageNotFoundError:
            raise FeatstoreError(f"{DISTRIBUTION} is not installed (pip install -e .): no version to show") from None
        raise typer.Exit()

    # the callback also makes the app a group whatever its number of commands
    @app.callback()
    def tool_options(show_version: bool = typer.Option(False, "--version", is_eager=True, callback=print_version,
                                                       help="Print the version and exit.")) -> None:
        pass

    return app


app = tool_app("featstore", help="Frozen video encoders -> Zarr feature stores.")
console = Console()
err_console = Console(stderr=True)


@app.command()
def synth(
    out: Path = typer.Option(Path("data/synth"), help="Folder for the generated videos, images and manifests."),
    seed: Optional[int] = typer.Option(
        None, help="Random seed; same seed, same bytes.",
        show_default="the config file's, else the style's: 0 default, 7 variant, 23 dev"),
    config: Optional[Path] = typer.Option(None, help="JSON file of SynthConfig fields (sizes, lengths, style) to override."),
    style: Optional[str] = typer.Option(
        None, help="Look and motion preset: default; variant (other colours, textures, sizes, speeds; registered as "
        "--dataset synthetic-variant*, default folder data/synth-variant; nothing is tuned on it); or dev (a third "
        "look for tuning: synthetic-dev*, data/synth-dev).", show_default="the config file's, else default"),
) -> None:
    """Generate the built-in synthetic video dataset (mp4 files + manifests)."""
    from data_manifests.registry import refuse_other_data_in_preset_folder
    from data_manifests.synth import generate_synthetic

    settings = synth_config(seed, config, style)
    refuse_other_data_in_preset_folder(out, settings, "--out")
    paths = generate_synthetic(out, settings)
    for part, path in paths.items():
        console.print(f"{part}: {path}")


def synth_config(seed: int | None, config_file: Path | None, style: str | None = None):
    """SynthConfig from an optional JSON file of its fields (unknown fields are an error), then --style and
    --seed; without a seed anywhere the style preset's own seed is used."""
    import dataclasses

    from data_manifests.synth import STYLE_SEEDS, SynthConfig, SynthStyle

    fields = {}
    if config_file is not None:
        try:
            fields = json.loads(config_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FeatstoreError(f"cannot read the synthetic config {config_file}: {exc}") from exc
        if not isinstance(fields, dict):
            raise FeatstoreError(f"{config_file} must hold a JSON object of SynthConfig fields")
        known = {f.name for f in dataclasses.fields(SynthConfig)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise FeatstoreError(f"unknown synthetic config fields {unknown} (known: {', '.join(sorted(known))})")
    if style is not None:
        fields["style"] = style
    if "style" in fields:
        fields["style"] = SynthStyle.from_json(fields["style"])
    if seed is not None:
        fields["seed"] = seed
    elif "seed" not in fields and "style" in fields:
        fields["seed"] = STYLE_SEEDS.get(fields["style"].name, 0)
    return SynthConfig(**fields)


@app.command()
def extract(
    model: str = typer.Option(..., help="Encoder name (see `featstore models`).", rich_help_panel=MODEL_PANEL),
    dataset: str = typer.Option(..., help="Dataset name (see `featstore datasets`) or a manifest .jsonl path.",
                                rich_help_panel=DATA_PANEL),
    out: Optional[str] = typer.Option(None, help="Store to write: a path or an fsspec URL, e.g. s3://bucket/x.zarr.",
                                      show_default="runs/<dataset>-<model>.zarr", rich_help_panel=OUTPUT_PANEL),
    data_root: Optional[Path] = typer.Option(None, help="Where a named dataset's files are; when not given, its "
                                             "default root (`featstore datasets`).", rich_help_panel=DATA_PANEL),
    fold: int = typer.Option(1, help="Official split number for datasets that have several (a manifest is one).",
                             rich_help_panel=DATA_PANEL),
    allow_outside_root: bool = typer.Option(False, "--allow-outside-root",
                                            help="Read manifest record paths that resolve (symlinks followed) "
                                                 "outside the manifest's root.", rich_help_panel=DATA_PANEL),
    weights: Optional[str] = typer.Option(None, help="Checkpoint file or folder, or a Hugging Face model id "
                                          "(org/name[@revision]) in the local cache; when not given, the model's file "
                                          "in $FEATSTORE_WEIGHTS_DIR, its bundled weights, or (where weights are "
                                          "optional) random init.",
                                          rich_help_panel=MODEL_PANEL),
    seed: int = typer.Option(0, help="Seed for randomly initialized encoders.", rich_help_panel=MODEL_PANEL),
    clip_len: int = typer.Option(16, help="Frames per clip.", rich_help_panel=DATA_PANEL),
    stride: Optional[int] = typer.Option(None, help="Frames between clip starts; 4 = THUMOS.",
                                         show_default="the clip length", rich_help_panel=DATA_PANEL),
    fps: Optional[float] = typer.Option(None, help="Resample videos to this frame rate at decode time.",
                                        show_default="the video's own", rich_help_panel=DATA_PANEL),
    tail: str = typer.Option("drop", help="Partial last clip: drop or pad (repeat the last frame).",
                             rich_help_panel=DATA_PANEL),
    static_per_video: int = typer.Option(10, help="Static clips (one frame tiled) per video.",
                                         rich_help_panel=DATA_PANEL),
    positions: str = typer.Option(
        "centres", help="Where the static frames sit: centres (of equal bins) or linspace (the authors': "
        "np.linspace(0, n - 1, k) truncated, first and last frame included).", rich_help_panel=DATA_PANEL),
    decoder: str = typer.Option("auto", help="auto (decord, PyAV fallback), decord or pyav.",
                                rich_help_panel=DATA_PANEL),
    workers: Optional[int] = typer.Option(None, help="Decode processes.",
                                          show_default="0 (inline) on the CPU, min(8, cores per GPU) on a GPU",
                                          rich_help_panel=DATA_PANEL),
    pixel_transform: str = typer.Option("none", help="Pixel-level baseline applied to the decoded frames before the "
                                        "encoder: none, downsample-2x, downsample-4x, blur or blacken (the paper's "
                                        "Table 1 rows; docs/store-format.md).", rich_help_panel=DATA_PANEL),
    boxes: Optional[Path] = typer.Option(None, help="Person box file (CSV video_id,frame,x1,y1,x2,y2, fractions of "
                                         "the frame) for blur and blacken; when not given, blur covers the whole "
                                         "frame.", rich_help_panel=DATA_PANEL),
    blur_sigma: float = typer.Option(DEFAULT_BLUR_SIGMA, help="Gaussian blur sigma, x the frame's shorter side.",
                                     rich_help_panel=DATA_PANEL),
    batch_size: int = typer.Option(32, help="Clips per encoder forward.", rich_help_panel=MODEL_PANEL),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N.", rich_help_panel=MODEL_PANEL),
    precision: str = typer.Option("auto", help="auto, fp32, bf16 or fp16.", rich_help_panel=MODEL_PANEL),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the encoder (first batches slower).",
                                 rich_help_panel=MODEL_PANEL),
    dtype: str = typer.Option("float16", help="Stored embedding dtype: float16 or float32.",
                              rich_help_panel=OUTPUT_PANEL),
    videos_per_part: int = typer.Option(8, help="Videos per committed part (the resume unit).",
                                        rich_help_panel=OUTPUT_PANEL),
    overwrite: bool = typer.Option(False, help="Replace a store made with other settings.",
                                   rich_help_panel=OUTPUT_PANEL),
    retry_failed: bool = typer.Option(False, help="Try the videos that failed before again.",
                                      rich_help_panel=OUTPUT_PANEL),
    progress: bool = typer.Option(True, help="Show the progress bar.", rich_help_panel=OUTPUT_PANEL),
) -> None:
    """Decode videos, cut clips, run the encoder, and write (or resume) a feature store."""
    from featstore.extract import ExtractConfig
    from featstore.extract import extract as run_extract
    from featstore.sampling import SamplingConfig

    sampling = SamplingConfig(clip_len=clip_len, stride=stride, fps=fps, tail=tail, static_per_video=static_per_video,
                              static_positions=positions)
    transform = PixelTransformConfig(pixel_transform, None if boxes is None else str(boxes), blur_sigma)
    config = ExtractConfig(
        model=model, dataset=dataset, out=out or str(Path("runs") / f"{Path(dataset).stem}-{model}.zarr"),
        data_root=None if data_root is None else str(data_root), fold=fold, allow_outside_root=allow_outside_root,
        weights=weights, seed=seed, sampling=sampling, pixel_transform=transform, dtype=dtype,
        batch_size=batch_size, videos_per_part=videos_per_part, device=device, precision=precision,
        decoder=decoder, overwrite=overwrite, retry_failed=retry_failed, workers=workers, compile=compile,
    )
    result = run_extract(config, show_progress=progress)
    if result.rank > 0:  # under torchrun: one line per rank; rank 0 reports the store
        console.print(f"rank {result.rank}/{result.world_size}: {result.parts_computed} parts "
                      f"({result.videos_computed} videos) computed in {result.seconds:.1f}s")
        return
    ranks = f", {result.world_size} ranks" if result.world_size > 1 else ""
    console.print(
        f"[bold]{result.store}[/]: {result.n_videos} videos, {result.n_clips} clips, {result.n_static} static clips "
        f"in {result.seconds:.1f}s ({result.parts_computed} parts computed, {result.parts_reused} reused{ranks})"
    )
    if result.failures:
        err_console.print(f"[red]{len(result.failures)} videos failed[/] (retry with --retry-failed):")
        for failure in result.failures[:20]:
            err_console.print(f"  {failure['video_id']}: {failure['reason']}")
        raise typer.Exit(1)


def store_option(panel: str | None = None):
    """``--store``: required, but ``one_store`` says so, as the older positional form may give it instead."""
    return typer.Option(None, "--store", help="The store: a path or an fsspec URL (file://..., memory://..., "
                                              "s3://...).", show_default=False, rich_help_panel=panel)


def positional_store():
    # the older form `featstore info STORE`, kept for existing scripts; help and docs show --store
    return typer.Argument(None, metavar="STORE", hidden=True, show_default=False)


def one_store(option: str | None, positional: str | None) -> str:
    """The store given as ``--store`` or positionally (the older form): exactly one of the two."""
    if option is not None and positional is not None:
        raise FeatstoreError(f"give the store once: --store {option} or {positional} positionally, not both")
    if option is None and positional is None:
        raise FeatstoreError("no store given: --store STORE (a path or an fsspec URL)")
    return option if option is not None else positional


def print_json(data) -> None:
    """One JSON document on stdout, nothing else (``--json``)."""
    console.print_json(json.dumps(data))


@app.command()
def finalize(store: Optional[str] = store_option(), store_arg: Optional[str] = positional_store()) -> None:
    """Consolidate an extraction's staged parts into the store (done automatically at the end of a run;
    by hand e.g. after a multi-node job whose rank 0 died). Fails naming the parts still missing."""
    from featstore.extract import finalize_store

    store = one_store(store, store_arg)
    result = finalize_store(store)
    if result is None:
        console.print(f"{store}: already complete, nothing to finalize")
        return
    console.print(f"[bold]{result.store}[/]: finalized {result.parts_reused} parts, {result.n_videos} videos, "
                  f"{result.n_clips} clips, {result.n_static} static clips ({result.n_failed} failed)")


@app.command()
def info(
    store: Optional[str] = store_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON document."),
    store_arg: Optional[str] = positional_store(),
) -> None:
    """Print a readable summary of a store."""
    from featstore.summary import open_for_info, summarize

    summary = summarize(open_for_info(one_store(store, store_arg)))
    if as_json:
        print_json(summary)
        return
    print_summary(summary)


PRIVATE_LABELS_SHOWN = {
    "dropped": "dropped (attributes -1, subject and path empty): evaluate joins them from the raw store, --labels-from",
    "kept": "kept (attributes, subjects and source paths as in the raw store)",
}


def print_summary(summary: dict) -> None:
    from featstore.sampling import read_sampling_record

    anonymizer = summary["anonymizer"]
    kind = "anonymized store" if anonymizer else "raw store"
    table = Table(title=f"featstore {summary['path']} ({kind})", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    sampling = read_sampling_record(summary["sampling"]) if summary["sampling"] else {}
    preprocess = summary["preprocess"] or {}
    hub = summary["weights_hub_model"]
    weights = summary["weights"] if hub is None else f"{hub['repo_id']}@{hub['commit'][:12]}"
    rows = [
        ("model", f"{summary['model']}  ({weights}, sha256 {str(summary['weights_sha256'])[:12]})"),
        ("embeddings", f"dim {summary['dim']}, {summary['dtype']}"),
        ("dataset", f"{summary['dataset']} (task {summary['task']}, {summary['n_classes']} classes)"),
        ("attributes", ", ".join(summary["attributes"]) or "-"),
        ("videos", f"{summary['n_videos']} ({summary['n_failed']} failed); splits {summary['splits']}"),
        ("clips", f"{summary['n_clips']} ({summary['clips_per_video']} per video)"),
        ("static clips", str(summary["n_static"])),
        ("sampling", ", ".join(f"{k} {v}" for k, v in sampling.items())),
        ("preprocess", f"resize short {preprocess.get('resize_short')}, crop {preprocess.get('crop')}, "
                       f"mean {preprocess.get('mean')}, std {preprocess.get('std')}"),
        ("compute", f"{summary['device']}, {summary['precision']}; decoders {summary['decoders']}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in (summary["versions"] or {}).items())),
        ("finished", str(summary["finished"])),
    ]
    if anonymizer:
        rows[:0] = [("ANONYMIZED by", f"{anonymizer['label'] or 'anonymizer'} of run {anonymizer['run']} "
                                      f"(epoch {anonymizer['epoch']}, sha256 {str(anonymizer['aam_sha256'])[:12]})"),
                    ("source store", str(anonymizer["source_store"]))]
    if summary["pixel_transform"]:
        transform = ", ".join(f"{key} {value}" for key, value in summary["pixel_transform"].items())
        rows.insert(1, ("pixel transform", transform))
    if summary["private_labels"]:
        rows.append(("private labels", PRIVATE_LABELS_SHOWN.get(summary["private_labels"], summary["private_labels"])))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for failure in summary["failures"][:20]:
        console.print(f"  [red]failed[/] {failure['video_id']}: {failure['reason']}")


@app.command()
def verify(
    store: Optional[str] = store_option(),
    quick: bool = typer.Option(False, "--quick", help="Every check but reading each embedding for NaN/Inf."),
    store_arg: Optional[str] = positional_store(),
) -> None:
    """Check a store's integrity; exits 1 when any problem is found."""
    from featstore.summary import verify_store

    store = one_store(store, store_arg)
    problems = verify_store(store, quick=quick)
    if problems:
        for problem in problems:
            err_console.print(f"[red]problem[/] {problem}")
        err_console.print(f"{store}: {len(problems)} problems")
        raise typer.Exit(1)
    console.print(f"{store}: OK")


@app.command()
def export(
    store: Optional[str] = store_option("Data"),
    format: str = typer.Option("h5", "--format", help="Export format: h5 (one file), h5-per-video (one file, "
                                                      "f\\[video_id] = (T, C) float32 clip embeddings), opentad "
                                                      "(one (T, C) .npy per video + annotations.json, "
                                                      "category_idx.txt, config_hint.yaml for OpenTAD / "
                                                      "ActionFormer / TriDet) or mgfn ((T, crops, C) .npy + lists "
                                                      "for MGFN / RTFM).", rich_help_panel=OUTPUT_PANEL),
    out: str = typer.Option(..., help="h5, h5-per-video: the file to write, a path or an fsspec URL (written to "
                                      "$TMPDIR, then copied). opentad, mgfn: an empty or new local folder (a path "
                                      "or a file:// URL; their lists and configs name its files by path).",
                            rich_help_panel=OUTPUT_PANEL),
    crops: Optional[int] = typer.Option(
        None, help="mgfn only: crop axis size; more than 1 repeats the store's one view, as MGFN's training code "
                   "expects 10.", show_default=str(MGFN_DEFAULT_CROPS), rich_help_panel=OUTPUT_PANEL),
    subset_names: Optional[str] = typer.Option(
        None, help="opentad only: SPLIT=NAME pairs naming the store's splits in annotations.json (OpenTAD's "
                   "THUMOS configs read training and validation).",
        show_default=",".join(f"{split}={name}" for split, name in OPENTAD_SUBSET_NAMES.items()),
        rich_help_panel=OUTPUT_PANEL),
    store_arg: Optional[str] = positional_store(),
) -> None:
    """Export a store to another format."""
    from featstore.exporters import export as run_export
    from featstore.exporters import parse_subset_names

    names = None if subset_names is None else parse_subset_names(subset_names)
    console.print(f"wrote {run_export(one_store(store, store_arg), out, format, crops=crops, subset_names=names)}")


@app.command("import")
def import_(
    source: Path = typer.Argument(..., help="An .h5 in the featstore HDF5 layout; with --dataset, a per-video .h5 "
                                            "(f\\[video_id] -> (T, C)) or a folder of per-video (T, C) .npy files."),
    out: str = typer.Option(..., help="Store to create: a path or an fsspec URL (a remote store is built here and "
                                      "copied there whole)."),
    overwrite: bool = typer.Option(False, help="Replace an existing store at --out."),
    dataset: Optional[str] = typer.Option(
        None, help="Per-video features: the dataset name or manifest .jsonl naming the videos, splits, labels, "
                   "segments (manifest videos without features are recorded as failures)."),
    data_root: Optional[Path] = typer.Option(None, help="Per-video features: where a named dataset's files are."),
    fold: int = typer.Option(1, help="Per-video features: official split number of a named dataset."),
    clip_len: Optional[int] = typer.Option(None, help="Per-video features: frames per feature row.", show_default="16"),
    stride: Optional[int] = typer.Option(None, help="Per-video features: frames between rows.",
                                         show_default="the clip length"),
    fps: Optional[float] = typer.Option(None, help="Per-video features: frame rate of videos whose manifest record "
                                                   "has none."),
    feature: Optional[str] = typer.Option(None, help="Per-video .npy: read <stem>_FEATURE.npy (video_features "
                                                     "naming, e.g. rgb) and ignore other files."),
) -> None:
    """Import features into a store: our HDF5 export, or per-video features from other extractors."""
    per_video = {"--clip-len": clip_len, "--stride": stride, "--fps": fps, "--feature": feature,
                 "--data-root": data_root}
    if dataset is None:
        given = [name for name, value in per_video.items() if value is not None]
        if source.is_dir() or given:
            raise FeatstoreError(f"{given[0] if given else 'a folder of per-video .npy files'} needs --dataset "
                                 "(the manifest naming the videos)")
        from featstore.h5io import import_h5

        console.print(f"wrote {import_h5(source, out, overwrite=overwrite)}")
        return
    from featstore.per_video import import_per_video, load_import_manifest
    from featstore.sampling import SamplingConfig
    from featstore.store import Store

    manifest = load_import_manifest(dataset, data_root, fold)
    clips = {"clip_len": clip_len, "stride": stride}
    sampling = SamplingConfig(**{k: v for k, v in clips.items() if v is not None}, static_per_video=0)
    store = import_per_video(source, manifest, out, sampling, fps=fps, feature=feature, overwrite=overwrite)
    console.print(f"wrote {store}")
    failures = Store.open(store).failures
    if failures:
        err_console.print(f"[yellow]{len(failures)} manifest videos have no features[/] (recorded as failures; "
                          f"first: {failures[0]['video_id']})")


JSON_HELP = "Print the table as one JSON document (a list of objects, one per row)."


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the registered encoders."""
    from featstore.encoders import list_encoders

    rows = [{"name": entry.name, "embed_dim": entry.spec.embed_dim, "num_frames": entry.spec.num_frames,
             "resolution": entry.spec.resolution, "weights_required": entry.weights_required,
             "description": entry.description} for entry in list_encoders()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "dim", "frames", "input", "weights", "description")
    for row in rows:
        table.add_row(row["name"], str(row["embed_dim"]), str(row["num_frames"]), f"{row['resolution']}px",
                      "required" if row["weights_required"] else "optional", row["description"])
    console.print(table)


@app.command()
def datasets(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the registered datasets (any manifest .jsonl path works too)."""
    from data_manifests.registry import list_datasets

    # default_root None: the dataset needs --data-root
    rows = [{"name": entry.name, "default_root": None if entry.default_root is None else str(entry.default_root),
             "description": entry.description} for entry in list_datasets()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "default root", "description")
    for row in rows:
        table.add_row(row["name"], row["default_root"] or "--data-root", row["description"])
    console.print(table)


@app.command()
def manifest(
    dataset: str = typer.Argument(..., help="Dataset name (see `featstore datasets`) or a manifest .jsonl path."),
    out: Path = typer.Option(..., help="Manifest file to write (.jsonl); refused if it exists, unless --overwrite."),
    data_root: Optional[Path] = typer.Option(None, help="Where the dataset's files are."),
    fold: int = typer.Option(1, help="Official split number for datasets that have several (a manifest is one)."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out file."),
    allow_outside_root: bool = typer.Option(False, "--allow-outside-root",
                                            help="Accept record paths that resolve (symlinks followed) outside "
                                                 "the manifest's root."),
) -> None:
    """Write the manifest a registered dataset's builder produces (the one `extract --dataset` reads)."""
    from data_manifests.registry import write_manifest

    path = write_manifest(dataset, out, data_root, fold, overwrite=overwrite, allow_outside_root=allow_outside_root)
    console.print(f"wrote {path}")


def run_app(typer_app: typer.Typer) -> None:
    """Run a typer app so that user errors become one red line and exit code 2, never a traceback.

    Typer itself answers usage errors (unknown option, missing argument) with exit code 2.
    """
    try:
        typer_app()
    except FeatstoreError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


def main() -> None:
    run_app(app)
