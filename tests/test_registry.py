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
    assert {"helloworld", "fakejob", "add", "backup-export", "report-daily"} <= set(types)
    # Only the operator's tools ask for the API or a data folder (robotni/worker/execution.py operator_env).
    assert {name for name, t in types.items() if t.api} == {"backup-export", "report-daily"}
    assert {name: t.data_folder for name, t in types.items() if t.data_folder} == {"backup-export": "backups"}
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
        ("[tool.robotni]\npriority = 'high'", "priority must be one of urgent, normal, batch"),
        ("[tool.robotni]\nconcurrency = 2", "concurrency must be a table"),
        ("[tool.robotni]\nconcurrency = { limit = 0 }", "concurrency.limit must be a whole number >= 1"),
        ("[tool.robotni]\nconcurrency = { limit = 2, per = 'x' }", "unknown concurrency keys: per"),
        ("[tool.robotni]\nconcurrency = { limit = 2, key = 'params.a.b' }", "name one top-level params field"),
        ("[tool.robotni]\nconcurrency = { limit = 2, key = 'params.account' }", "must require 'account' or default it"),
        ("[tool.robotni]\nconcurrency = { limit = 2, key = 'a b' }", "'project', 'params.<field>' or a constant"),
        ("[tool.robotni]\nrate = '30 per minute'", "rate must look like '30/m'"),
        ("[tool.robotni]\nrate = '0/s'", "rate must look like '30/m'"),
        ("[tool.robotni]\napi = 'yes'", "api must be true or false"),
        ("[tool.robotni]\ndata_folder = '../etc'", "data_folder must be a plain name"),
        ("[tool.robotni]\ndata_folder = 'scripts'", "none of Robotni's own folders"),
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


def test_priority_concurrency_and_rate_are_read(tmp_path):
    block = """
[tool.robotni]
priority = "batch"
concurrency = { limit = 2, key = "params.account" }
rate = "30/m"
[tool.robotni.params]
required = ["account"]
properties.account = { type = "string" }
"""
    wtype = parse_type(write(tmp_path, "billing", block))
    assert wtype.priority.value == "batch" and (wtype.rate.count, wtype.rate.per) == (30, 60.0)
    assert wtype.concurrency.key_of("billing", "acme", {"account": "a1"}) == 'billing:account="a1"'
    shared = parse_type(write(tmp_path, "render", "[tool.robotni]\nconcurrency = { limit = 1, key = 'gpu' }"))
    assert shared.concurrency.key_of("render", "acme", {}) == "gpu"  # a constant: one cap for every type naming it
    per_project = parse_type(write(tmp_path, "mail", "[tool.robotni]\nconcurrency = { limit = 3 }"))
    assert per_project.concurrency.key_of("mail", "acme", {}) == "mail:project=acme"
