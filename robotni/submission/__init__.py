"""The one check of a job request: type, params, size caps, script and venv; and the per-project waiting cap.

Used by everything that makes a job from a request: the API's job and schedule resources and the schedules file
(and so, through the API, the CLI and the page). It imports the store, the worker types and the floor; never the
API, the worker or the runner, so a process that only checks requests loads none of them.
"""
