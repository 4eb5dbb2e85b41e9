#!/usr/bin/env bash
# Run a config overlay (config/ablations/) in runs/NAME, a copy of this folder's finished run,
# so the reference results stay as they are and Snakemake retrains only what the overlay
# changes (its params differ for those jobs alone; docs/running.md, "Ablations").
#   bash scripts/ablation.sh NAME OVERLAY [snakemake options ...]
# The run is config/config.yaml + config/seeds.yaml + OVERLAY. Model folders are hard-linked
# (a retrained variant gets a new folder, so the reference's is never written), training
# work dirs are not copied (a retrained variant starts from step 0), the rest is copied; the
# project's own input files (config/, local data) are hard-linked beside them.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/ablation.sh NAME OVERLAY [snakemake options ...]" >&2
  exit 2
fi
name=$1
overlay=$2
shift 2
[ -f "$overlay" ] || { echo "ablation: overlay $overlay: no such file" >&2; exit 1; }
overlay=$(realpath "$overlay")
[ -d results ] && [ -d .snakemake/metadata ] || {
  echo "ablation: no finished run here (results/ and .snakemake/metadata/ are needed)" >&2
  exit 1
}
dir=runs/$name
if [ ! -d "$dir/results" ]; then
  mkdir -p "$dir.partial/results" "$dir.partial/.snakemake"
  for part in results/*; do
    case $part in
      results/checkpoints) ;;
      results/models) cp -al "$part" "$dir.partial/results/" ;;
      *) cp -a "$part" "$dir.partial/results/" ;;
    esac
  done
  cp -a .snakemake/metadata "$dir.partial/.snakemake/"
  [ -d logs ] && cp -a logs "$dir.partial/"
  # the project's own files (config, local data, context grids), hard-linked so that paths
  # relative to the working folder resolve, with their timestamps, as in the reference run
  for part in * .[!.]*; do
    case $part in
      results | logs | runs | .snakemake | .git | .venv | opsa | workflow | tests | docs \
        | benchmarks | scripts | *.egg-info | .*cache | __pycache__) ;;
      *) [ -e "$part" ] && cp -al "$part" "$dir.partial/" ;;
    esac
  done
  mv "$dir.partial" "$dir"
fi
# targets and options first: everything after --configfile would be read as config files
exec snakemake --cores all --directory "$dir" "$@" \
  --configfile "$PWD/config/config.yaml" "$PWD/config/seeds.yaml" "$overlay"
