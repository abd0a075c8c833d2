"""gunicorn settings for `make run`; every value can be overridden by GUNICORN_CMD_ARGS."""

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("LABELWISE_THREADS", 4))
timeout = 30
accesslog = "-"
# Method, path, status, size and duration only: no query strings or bodies (patient data).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
