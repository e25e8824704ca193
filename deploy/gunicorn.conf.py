"""gunicorn settings for Hot-Net (used by deploy/hotnet-web.service).

Every value can be overridden from the environment file: HOTNET_BIND, HOTNET_WORKERS,
HOTNET_ACCESS_LOG.
"""
import multiprocessing
import os

bind = os.environ.get("HOTNET_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("HOTNET_WORKERS", min(4, multiprocessing.cpu_count() * 2 + 1)))
threads = 1
timeout = 60            # the app answers 503 long before: database timeouts are 20 s
graceful_timeout = 30
keepalive = 5
max_requests = 2000     # recycle workers now and then
max_requests_jitter = 200
# Only nginx on this host talks to gunicorn; the app reads X-Forwarded-* through ProxyFix
# (HOTNET_PROXY_COUNT=1), so gunicorn itself trusts no forwarded header.
forwarded_allow_ips = "127.0.0.1"
accesslog = os.environ.get("HOTNET_ACCESS_LOG", "/var/log/hotnet/access.log")
errorlog = "-"          # to the journal
# No query strings in the access log: sign-in links and unsubscribe tokens travel there.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss'
