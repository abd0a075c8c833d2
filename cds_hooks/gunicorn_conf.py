"""gunicorn settings for `make run`; every value can be overridden by GUNICORN_CMD_ARGS."""

import multiprocessing
import os
import shutil
import tempfile

from cds_hooks.config import load_config
from cds_hooks.logs import ACCESS_FORMAT, logging_config
from cds_hooks.store import upgrade

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("LABELWISE_THREADS", 4))
timeout = 30
accesslog = "-"
# Method, path (no query string), status, size and duration: no patient data.
access_log_format = ACCESS_FORMAT
logconfig_dict = logging_config(os.environ.get("LABELWISE_LOG_LEVEL", "INFO"))
# No shared control socket (~/.gunicorn/gunicorn.ctl): several servers may run side by side.
control_socket_disable = True

# Prometheus: the workers share their counts through files in one folder: a fresh one, removed
# on exit, unless PROMETHEUS_MULTIPROC_DIR names one (empty it between runs). cds_hooks/metrics.py
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="labelwise-metrics-")


def child_exit(server, worker):
    from prometheus_client import multiprocess  # only once the folder is set

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def on_starting(_server) -> None:
    """Migrate the database once, before any worker forks: workers only check the schema."""
    upgrade(load_config()["DATABASE_URL"])
