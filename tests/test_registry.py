"""Worker declarations: read as text, validated, loud on mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotni.errors import DeclarationError, InvalidParams, UnknownType
from robotni.worktypes.registry import load_registry, parse_type

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, block: str, body: str = "raise SystemExit('never imported')\n") -> Path:
    path = tmp_path / f"{name}.py"
    lines = "\n".join(f"# {line}" if line else "#" for line in block.strip().splitlines())
    path.write_text(f"# /// script\n{lines}\n# ///\n{body}")
    return path


def test_shipped_types_load():
    types = load_registry(ROOT / "workers")
    assert {"helloworld", "fakejob", "add"} <= set(types)
    assert types["fakejob"].validate({}) == {"delay_seconds": 5}
    assert types["add"].validate({"x": 1, "y": 2.5}) == {"x": 1, "y": 2.5}


def test_full_declaration_is_read_without_importing(tmp_path):
    path = write(
        tmp_path,
        "report",
        """
[tool.robotni]
description = "Builds a report"
queue = "reports"
soft_time_limit = 5
hard_time_limit = 7.5
retry = { max_retries = 2, backoff = 1, on_timeout = true }
[tool.robotni.params]
required = ["day"]
properties.day = { type = "string" }
properties.format = { enum = ["pdf", "csv"], default = "pdf" }
""",
    )
    wtype = parse_type(path)
    assert (wtype.name, wtype.queue, wtype.soft_time_limit, wtype.hard_time_limit) == (
        "report",
        "reports",
        5,
        7.5,
    )
    assert wtype.retry.max_attempts == 3 and wtype.retry.on_timeout
    assert wtype.validate({"day": "mon"}) == {"day": "mon", "format": "pdf"}


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ("[tool.other]\nx = 1", "no [tool.robotni] table"),
        ("[tool.robotni]\nqueue = 'a.b'", "queue must match"),
        ("[tool.robotni]\nsoft_time_limit = -1", "positive number"),
        ("[tool.robotni]\nsoft_time_limit = 10\nhard_time_limit = 5", "hard_time_limit must not be below"),
        ("[tool.robotni]\ncolour = 'red'", "unknown [tool.robotni] keys: colour"),
        ("[tool.robotni]\nparams = { type = 'array' }", "must describe an object"),
        ("[tool.robotni]\nparams = { properties = 3 }", "not a valid JSON Schema"),
        ("[tool.robotni]\nretry = { max_retries = -1 }", "max_retries"),
        ("[tool.robotni\n", "not valid TOML"),
    ],
)
def test_bad_declarations_are_refused_with_a_reason(tmp_path, block, reason):
    path = write(tmp_path, "bad", block)
    with pytest.raises(DeclarationError, match=reason.replace("[", r"\[")):
        parse_type(path)


def test_a_script_without_a_block_stops_loading_and_names_the_file(tmp_path):
    write(tmp_path, "good", "[tool.robotni]")
    (tmp_path / "plain.py").write_text("print('no metadata')\n")
    with pytest.raises(DeclarationError, match=r"plain\.py: no '# /// script' metadata block"):
        load_registry(tmp_path)


def test_params_errors_name_each_field(tmp_path):
    add = load_registry(ROOT / "workers")["add"]
    with pytest.raises(InvalidParams) as caught:
        add.validate({"x": "one", "z": 1})
    errors = caught.value.args[0]
    assert set(errors) == {"x", "y", "_schema"}


def test_unknown_type_lists_the_known_ones():
    with pytest.raises(UnknownType, match="known: add"):
        load_registry(ROOT / "workers")["nope"]
