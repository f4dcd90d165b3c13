"""Everything about the message broker: Celery's settings, kombu transports, cleaning the filesystem broker, and
publishing (run a job, revoke one). Imported by the API, beat and the worker; it imports the store and worker
types, never the API, the worker or the runner.
"""

# Task names: the contract between the processes that publish and the worker that registers the tasks.
RUN_JOB_TASK = "robotni.run_job"
CLEANUP_TASK = "robotni.cleanup"
DELIVER_WEBHOOK_TASK = "robotni.deliver_webhook"
# Deliveries have their own queue and worker: a slow receiver never holds up a job, nor a job a delivery.
WEBHOOK_QUEUE = "webhooks"
