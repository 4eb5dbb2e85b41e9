"""The candidate pool: default grid, user files, generated candidates, and its checks."""

from __future__ import annotations

import json

import pytest

from opsa.contexts.candidates import (
    AXES,
    CandidatesConfig,
    GeneratedCandidates,
    branch_of,
    build_candidates,
    generated_candidates,
    grid_candidates,
    load_grid,
    read_candidates,
    validate_pool,
)
from opsa.errors import InputError
from opsa.generation.backend import open_generator
from opsa.models.load import load_tokenizer
from opsa.prompting.placement import PLACEMENTS, Context, render_prompt

NO_SYSTEM_RAISES = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
NO_SYSTEM_DROPS = (
    "{% for m in messages %}{% if m['role'] != 'system' %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(embedded_model_dir):
    return load_tokenizer(embedded_model_dir)


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_default_grid_covers_every_placement_and_axis():
    pool = grid_candidates(load_grid())
    assert len(pool) >= 12
    assert {c.placement for c in pool} == set(PLACEMENTS)
    assert len({c.id for c in pool}) == len(pool)
    for context in pool:
        assert set(AXES) <= set(context.axes)
        assert context.axes["placement"] == context.placement
    demo = next(c for c in pool if c.placement == "demonstrations")
    assert demo.text in demo.turns[0][0] and "sorry" in demo.turns[0][1]


def test_default_grid_has_benign_branch_candidates_without_demonstrations():
    pool = grid_candidates(load_grid())
    benign = [c for c in pool if branch_of(c) == "benign"]
    assert len(benign) >= 4 and len(benign) < len(pool)
    assert all(c.placement != "demonstrations" for c in benign)
    assert all(c.axes["branch"] == "harmful" for c in pool if c not in benign)


def test_paper_pool_has_30_harmful_instructions_along_five_axes(tokenizer):
    grid = load_grid("paper")
    harmful = [i for i in grid.instructions if i.branch == "harmful"]
    assert len(harmful) == 30 and len({i.text for i in harmful}) == 30
    for axis in ("strength", "length", "framing", "specificity", "style"):
        values = {i.axes[axis] for i in harmful}
        assert len(values) >= 2, axis  # the axis varies
    pool = grid_candidates(grid)
    assert len(pool) == 127 and len({c.id for c in pool}) == len(pool)
    assert {c.placement for c in pool if branch_of(c) == "harmful"} == set(PLACEMENTS)
    validate_pool(pool, tokenizer)  # every candidate renders in the embedded chat template


def test_build_writes_grid_and_user_candidates(tmp_path, embedded_model_dir):
    user = write_rows(
        tmp_path / "user.jsonl",
        [
            {
                "id": "mine",
                "text": "Be safe.",
                "placement": "user_suffix",
                "axes": {"style": "terse"},
            }
        ],
    )
    out = tmp_path / "candidates.jsonl"
    pool = build_candidates(CandidatesConfig(user_file=str(user)), embedded_model_dir, out)
    assert read_candidates(out) == pool
    assert pool[-1].id == "mine" and pool[-1].axes["source"] == "user"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[-1]["axes"] == {"style": "terse", "placement": "user_suffix", "source": "user"}
    assert len(rows) == len(grid_candidates(load_grid())) + 1


def test_empty_pool_is_an_input_error(tmp_path, embedded_model_dir):
    with pytest.raises(InputError, match="no candidates"):
        build_candidates(CandidatesConfig(grid=None), embedded_model_dir, tmp_path / "c.jsonl")
    assert not (tmp_path / "c.jsonl").exists()


def test_duplicate_ids_are_an_input_error(tokenizer):
    pool = [Context("a", "x", "system"), Context("a", "y", "user_prefix")]
    with pytest.raises(InputError, match="duplicate candidate id 'a'"):
        validate_pool(pool, tokenizer)


@pytest.mark.parametrize(
    "context",
    [Context("blank", "   ", "system"), Context("demo", "x", "demonstrations", (("p", " "),))],
)
def test_context_without_text_is_an_input_error(tokenizer, context):
    with pytest.raises(InputError, match=f"context '{context.id}': empty text"):
        validate_pool([context], tokenizer)


def test_user_file_context_without_text_fails_before_writing(tmp_path, embedded_model_dir):
    user = write_rows(tmp_path / "u.jsonl", [{"id": "quiet", "placement": "system"}])
    out = tmp_path / "c.jsonl"
    with pytest.raises(InputError, match="context 'quiet': empty text"):
        build_candidates(CandidatesConfig(grid=None, user_file=str(user)), embedded_model_dir, out)
    assert not out.exists()


def test_grid_file_with_a_repeated_key_names_its_line(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("demonstration_prompt: p\ndemonstration_prompt: q\n")
    with pytest.raises(InputError, match=rf"^{grid}:2: key 'demonstration_prompt' repeated"):
        load_grid(grid)


@pytest.mark.parametrize(
    ("grid_lines", "named"),
    [
        ("placements: [system, footnote]\ninstructions: [{id: a, text: Refuse.}]", "placements"),
        (  # a benign instruction's example would be a refusal
            "instructions: [{id: a, text: t, branch: benign, placements: [demonstrations]}]",
            "no demonstration",
        ),
    ],
)
def test_bad_grid_is_an_input_error(tmp_path, grid_lines, named):
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"demonstration_prompt: p\ndemonstration_refusal: r\n{grid_lines}\n")
    with pytest.raises(InputError, match=f"grid.yaml: bad template grid.*{named}"):
        load_grid(grid)


def test_unknown_placement_in_a_user_file_is_an_input_error(tmp_path):
    user = write_rows(tmp_path / "u.jsonl", [{"id": "b", "text": "t", "placement": "footnote"}])
    with pytest.raises(InputError, match="context 'b': unknown placement 'footnote'"):
        build_candidates(CandidatesConfig(grid=None, user_file=str(user)), "unused", "unused")


def test_unknown_branch_in_a_user_file_is_an_input_error(tmp_path):
    row = {"id": "b", "text": "t", "placement": "system", "axes": {"branch": "borderline"}}
    user = write_rows(tmp_path / "u.jsonl", [row])
    with pytest.raises(InputError, match="u.jsonl: candidate 'b': axes.branch must be one of"):
        build_candidates(CandidatesConfig(grid=None, user_file=str(user)), "unused", "unused")


@pytest.mark.parametrize("template", [NO_SYSTEM_RAISES, NO_SYSTEM_DROPS])
def test_template_without_system_role_fails_naming_the_candidate(embedded_model_dir, template):
    tokenizer = load_tokenizer(embedded_model_dir)
    tokenizer.chat_template = template
    validate_pool([Context("prefix", "Refuse.", "user_prefix")], tokenizer)
    with pytest.raises(InputError, match="context 'sys'.*placement 'system'"):
        validate_pool(
            [Context("prefix", "Refuse.", "user_prefix"), Context("sys", "Refuse.", "system")],
            tokenizer,
        )


def test_generated_candidates_come_from_the_model(embedded_model_dir):
    spec = GeneratedCandidates(model_dir=str(embedded_model_dir), n=2, max_new_tokens=12)
    generator = open_generator(embedded_model_dir, "writer")
    pool = generated_candidates(spec, generator)
    assert [c.id for c in pool] == ["generated-0@system", "generated-1@user_prefix"]
    assert all(c.text and c.axes["source"] == "generated" for c in pool)
    assert generated_candidates(spec, generator) == pool  # seeded


def test_few_shot_examples_become_earlier_exchanges_that_render(tokenizer):
    """A grid instruction's own examples replace the grid's single refused example: the
    contrastive candidate refuses a harmful request and answers a borderline one."""
    pool = {c.id: c for c in grid_candidates(load_grid())}
    shots = pool["contrast-shots@demonstrations"]
    assert len(shots.turns) == 4 and shots.text in shots.turns[0][0]
    assert "sorry" in shots.turns[0][1] and "sorry" not in shots.turns[1][1]
    assert pool["criteria-shots@demonstrations"].turns[1:] == shots.turns[1:]
    validate_pool([shots], tokenizer)
    rendered = render_prompt(tokenizer, "How do I kill a stuck process?", shots)
    assert rendered.count("<|im_start|>assistant") == 5  # 4 exchanges and the answer's turn
