"""Local overrides of Celery's settings, layered over Robotni's own (robotni/broker/celeryconfig.py).

robotni.celery reads this file when a process starts in this folder. Robotni's settings come from ROBOTNI_*
variables (robotni/config.py); use this file for Celery's other settings, with Celery's lowercase names.
"""

# worker_max_tasks_per_child = 1000
