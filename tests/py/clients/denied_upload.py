"""POSTs a body that the gateway refuses (the token lacks MFA) with Python
requests, COUNT times, each on a new connection, and prints how many answers
arrived. The proxy (HTTPS_PROXY) and the CA bundle (REQUESTS_CA_BUNDLE) come
from the environment, as for automation.

usage: denied_upload.py URL SIZE COUNT [chunked]"""
import json
import os
import sys

import requests

url, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunked = sys.argv[4:] == ["chunked"]
body = b"x" * size
headers = {"Authorization": "Bearer " + os.environ["TOKEN"], "Content-Type": "application/octet-stream"}
statuses, reasons, connection, errors = [], [], [], []
for _ in range(count):
    data = iter([body[i:i + 65536] for i in range(0, size, 65536)]) if chunked else body
    try:
        with requests.Session() as session:
            r = session.post(url, data=data, headers=headers, timeout=60)
            statuses.append(r.status_code)
            reasons.append(r.json().get("reason"))
            connection.append(r.headers.get("connection"))
    except requests.exceptions.RequestException as e:
        errors.append(f"{type(e).__name__}: {e}"[:300])
print(json.dumps({"answered": len(statuses), "statuses": statuses, "reasons": reasons,
                  "connection": connection, "errors": errors}))
