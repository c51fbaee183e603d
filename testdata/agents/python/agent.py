"""Burns CPU in two named functions while the real Python Pyroscope agent (pyroscope-io)
pushes to gocost. Arguments: server URL, app name, seconds, token, tenant."""
import sys
import time

import pyroscope

url, app, secs, token, tenant = sys.argv[1:6]
pyroscope.configure(
    application_name=app,
    server_address=url,
    basic_auth_username="agent",
    basic_auth_password=token,
    tenant_id=tenant,
    tags={"env": "test", "team": "py"},
    sample_rate=100,
    upload_interval=5,
)


def gocost_py_busy_leaf(n):
    x = 0
    for i in range(n):
        x += i * i
    return x


def gocost_py_busy_outer():
    return gocost_py_busy_leaf(200000)


end = time.time() + float(secs)
while time.time() < end:
    gocost_py_busy_outer()
pyroscope.shutdown()
