"""Jobs that wait for other jobs, through HTTP on real workers: depends_on, workflows, failure rules, cancel."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.stack import Stack, alive, pids_of, wait_until

ENDED = {"completed", "failed", "cancelled"}


def submit_workflow(stack: Stack, steps: list[dict], name: str = "wf", expect: int = 202, **fields) -> dict:
    response = stack.http.post(stack.api("/workflows"), json={"name": name, "steps": steps, **fields})
    assert response.status_code == expect, response.text
    return response.json()


def workflow(stack: Stack, workflow_id: str) -> dict:
    response = stack.http.get(stack.api(f"/workflows/{workflow_id}"))
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_workflow(stack: Stack, workflow_id: str, timeout: float = 40) -> dict:
    return wait_until(
        lambda: (found := workflow(stack, workflow_id))["status"] in ENDED and found,
        timeout,
        f"workflow {workflow_id} to end",
    )


def steps_of(found: dict) -> dict[str, dict]:
    return {step["name"]: step["job"] for step in found["steps"]}


def step(name: str, depends_on: tuple[str, ...] = (), type: str = "joiner", **params) -> dict:
    return {"name": name, "type": type, "params": {"value": name, **params}, "depends_on": list(depends_on)}


def test_a_diamond_starts_its_last_step_after_both_middles_and_gives_it_their_results(stack):
    steps = [step("a"), step("b", ["a"], seconds=0.5), step("c", ["a"], seconds=1), step("d", ["b", "c"])]
    submitted = submit_workflow(stack, steps, name="diamond")
    assert submitted["status"] == "running" and [s["name"] for s in submitted["steps"]] == ["a", "b", "c", "d"]
    first = steps_of(submitted)
    assert first["a"]["status"] == "queued" and first["d"]["status"] == "waiting" and first["d"]["parents_left"] == 2
    assert all(job["workflow_id"] == submitted["id"] for job in first.values())
    done = wait_for_workflow(stack, submitted["id"])
    assert done["status"] == "completed" and done["finished_at"]
    jobs = steps_of(done)
    assert {job["status"] for job in jobs.values()} == {"completed"}
    assert jobs["d"]["started_at"] >= max(jobs["b"]["finished_at"], jobs["c"]["finished_at"])
    assert jobs["b"]["started_at"] >= jobs["a"]["finished_at"] and jobs["c"]["started_at"] >= jobs["a"]["finished_at"]
    parents = jobs["d"]["result"]["parents"]
    assert parents == {
        jobs["b"]["id"]: {"type": "joiner", "status": "completed", "result": jobs["b"]["result"], "step": "b"},
        jobs["c"]["id"]: {"type": "joiner", "status": "completed", "result": jobs["c"]["result"], "step": "c"},
    }
    assert jobs["a"]["result"]["parents"] is None  # no parents: no $ROBOTNI_PARENTS
    listed = stack.http.get(stack.api("/workflows"), params={"name": "diamond", "status": "completed"}).json()
    assert [w["id"] for w in listed["workflows"]] == [submitted["id"]]


def test_a_failed_step_cancels_what_depends_on_it_and_everything_under_it(stack):
    steps = [step("a"), step("b", ["a"], fail=True), step("c", ["a"]), step("d", ["b", "c"]), step("e", ["d"])]
    steps.append(step("f", ["e"]))
    done = wait_for_workflow(stack, submit_workflow(stack, steps)["id"])
    jobs = steps_of(done)
    assert done["status"] == "failed"
    assert [jobs[n]["status"] for n in "abcdef"] == [
        "completed",
        "failed",
        "completed",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert jobs["d"]["error"] == f"parent {jobs['b']['id']} ended failed" and jobs["d"]["started_at"] is None
    assert jobs["e"]["error"] == f"parent {jobs['d']['id']} ended cancelled"
    assert jobs["f"]["finished_at"] == jobs["e"]["finished_at"]  # the subtree ended in one transaction


def test_on_parent_failure_run_runs_it_anyway_with_the_failed_parent_in_its_file(stack):
    late = {**step("d", ["b"]), "on_parent_failure": "run"}
    done = wait_for_workflow(stack, submit_workflow(stack, [step("b", fail=True), late])["id"])
    jobs = steps_of(done)
    assert jobs["d"]["status"] == "completed" and done["status"] == "failed"
    assert jobs["d"]["result"]["parents"][jobs["b"]["id"]]["status"] == "failed"


def test_cancelling_a_workflow_kills_its_running_step_and_cancels_the_rest(stack):
    steps = [{"name": "slow", "type": "sleeper", "params": {"seconds": 30}}, step("after", ["slow"])]
    submitted = submit_workflow(stack, steps)
    slow = steps_of(submitted)["slow"]
    stack.wait_for(slow["id"], {"running"})
    pids = pids_of(stack, slow["id"])
    response = stack.http.delete(stack.api(f"/workflows/{submitted['id']}"))
    assert response.status_code == 202, response.text
    assert steps_of(response.json())["after"]["status"] == "cancelled"
    done = wait_for_workflow(stack, submitted["id"], timeout=20)
    assert done["status"] == "cancelled" and steps_of(done)["slow"]["status"] == "cancelled"
    for pid in pids.values():
        wait_until(lambda pid=pid: not alive(pid), 10, f"process {pid} of the cancelled step to die")
    again = stack.http.delete(stack.api(f"/workflows/{submitted['id']}"))
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_a_cycle_an_unknown_step_and_a_bad_step_are_refused_by_name(stack):
    cycle = [step("a", ["c"]), step("b", ["a"]), step("c", ["b"]), step("d")]
    refused = submit_workflow(stack, cycle, expect=422)
    assert "a cycle: a -> b -> c -> a" in refused["message"], refused
    assert "b -> b" in submit_workflow(stack, [step("b", ["b"])], expect=422)["message"]
    unknown = submit_workflow(stack, [step("a", ["nope"])], expect=422)
    assert unknown["errors"]["json"]["steps"]["0"]["depends_on"] == ["no step named 'nope'"]
    bad = submit_workflow(stack, [step("a"), {"name": "b", "type": "add", "params": {"x": "one"}}], expect=422)
    assert "step 'b'" in bad["message"] and "params" in bad["errors"]["json"]["steps"]["1"]
    many = submit_workflow(stack, [step(f"s{i}") for i in range(1001)], expect=422)
    assert "at most 1000" in many["message"]
    assert not stack.http.get(stack.api("/jobs"), params={"type": "add"}).json()["jobs"]  # nothing half-written


def test_depends_on_a_plain_job_waits_and_names_a_bad_parent(stack):
    parent = stack.submit("joiner", {"seconds": 1, "value": 7})
    child = stack.submit("joiner", depends_on=[parent["id"], parent["id"]])
    assert child["status"] == "waiting" and child["parents_left"] == 1 and child["on_parent_failure"] == "cancel"
    waiting = stack.http.get(stack.api("/jobs"), params={"status": "waiting"}).json()["jobs"]
    assert child["id"] in [job["id"] for job in waiting]
    done = stack.wait_for(child["id"])
    assert done["status"] == "completed" and done["result"]["parents"][parent["id"]]["result"]["value"] == 7
    late = stack.submit("joiner", depends_on=[parent["id"]])  # its parent had ended: queued at once
    assert late["status"] == "queued" and stack.wait_for(late["id"])["status"] == "completed"
    refused = stack.submit("joiner", depends_on=["no-such-id"], expect=422)
    assert refused["errors"]["json"]["depends_on"] == ["no job no-such-id in this project"]
    elsewhere = stack.submit("joiner", depends_on=[parent["id"]], project="other", expect=422)
    assert parent["id"] in elsewhere["message"]
    stack.submit("joiner", depends_on=[f"id-{i}" for i in range(101)], expect=422)


def test_cancelling_a_waiting_job_cancels_its_dependents_and_releases_a_run_anyway_one(stack):
    parent = stack.submit("joiner", {"seconds": 30})
    middle = stack.submit("joiner", depends_on=[parent["id"]])
    under = stack.submit("joiner", depends_on=[middle["id"]])
    anyway = stack.submit("joiner", depends_on=[middle["id"]], on_parent_failure="run")
    assert stack.http.delete(stack.api(f"/jobs/{middle['id']}")).status_code == 200
    assert stack.job(under["id"])["status"] == "cancelled"  # in the cancel's own transaction
    assert stack.wait_for(anyway["id"])["status"] == "completed"
    stack.http.delete(stack.api(f"/jobs/{parent['id']}"))
    stack.wait_for(parent["id"])


def test_a_parent_ending_while_its_dependent_is_submitted_never_leaves_it_waiting(stack):
    """Dependents submitted right as their parents end, over and over: every one of them runs."""
    pairs = []
    for i in range(40):
        parent = stack.submit("fakejob", {"delay_seconds": 0})
        time.sleep(0.004 * (i % 10))  # the submit lands before, during and after the parent's end
        pairs.append((parent["id"], stack.submit("fakejob", {"delay_seconds": 0}, depends_on=[parent["id"]])["id"]))
    for parent_id, child_id in pairs:
        child = stack.wait_for(child_id, timeout=60)
        assert child["status"] == "completed", child
        assert child["started_at"] >= stack.job(parent_id)["finished_at"]


def test_the_command_line_submits_a_workflow_file_and_shows_it(stack, tmp_path):
    spec = tmp_path / "chain.yaml"
    spec.write_text(
        "name: chain\nsteps:\n  - {name: first, type: helloworld}\n  - {name: second, type: helloworld, depends_on: [first]}\n"
    )
    env = {**stack.env, "ROBOTNI_API_URL": stack.url}
    cli = [sys.executable, "-c", "from robotni.cli import main; main()", "workflow"]
    submitted = subprocess.run([*cli, "submit", str(spec), "--wait"], env=env, capture_output=True, text=True)
    assert submitted.returncode == 0, submitted.stderr
    first_line = submitted.stdout.splitlines()[0]
    assert "'chain'" in first_line and first_line.endswith(": completed")
    workflow_id = first_line.split()[1]
    shown = subprocess.run([*cli, "show", workflow_id], env=env, capture_output=True, text=True).stdout
    assert "second" in shown and "after first" in shown and shown.count("completed") == 3
