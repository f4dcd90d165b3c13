"""The planner: a sentence in English or Indonesian ("tiap 30 detik", "every weekday at 6pm") read into the
schedules it would make, by fixed rules (and, when configured, a chat model whose answer must pass the same checks).

`words.py` holds the vocabulary, `reading.py` the prompt as it is read, `timing.py` the time grammar, `cron.py` what it
makes (cron or an interval), `matching.py` worker types and params, `plan.py` puts a plan together and checks it as
POST /schedules would, `model.py` asks the model, `execute.py` makes the planned schedules (docs/planner.md).
"""
