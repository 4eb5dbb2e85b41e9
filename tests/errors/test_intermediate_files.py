"""A hand-edited intermediate file that the workflow itself reads (in an input function, while
it plans the jobs) is one line naming it, as a step's input would be."""

from __future__ import annotations

SELECTED = "results/contexts/smollm2-135m/selected.json"


def test_a_hand_edited_selection_is_one_line_naming_it(
    embedded_config, snakemake, tmp_path, embedded_model_dir
):
    embedded_config["models"]["smollm2-135m"]["source"] = str(embedded_model_dir)
    embedded_config["contexts"]["selection"]["pin_harmful"] = "harmful-label@user_prefix"
    made = snakemake(embedded_config, SELECTED, dry_run=False)  # pinned: no scoring
    assert made.returncode == 0, made.output[-3000:]
    for text, named in [
        ('{"harmful": ', ":1: not valid JSON"),
        ('{"benign": null}', ": not a context selection"),
    ]:
        (tmp_path / SELECTED).write_text(text)
        run = snakemake(None, "results/models/smollm2-135m/opsa")
        run.error(f"opsa workflow: error: {SELECTED}{named}")
        assert "InputFunctionException" not in run.output
