"""What the client scripts share: the settings the test passes in the
environment, and a GET through the gateway with Python requests."""
import json
import os

import requests

AUTHORITY_HOST = os.environ["AUTHORITY_HOST"]  # https://host[:port], no tenant
TENANT = os.environ["TENANT"]
CLIENT_ID = os.environ["CLIENT_ID"]
CLIENT_SECRET = os.environ["CLIENT_SECRET"]
CERT_PATH = os.environ["CERT_PATH"]
CERT_THUMBPRINT = os.environ["CERT_THUMBPRINT"]
PUBLIC_CLIENT_ID = os.environ["PUBLIC_CLIENT_ID"]
PC_BASE = os.environ["PC_BASE"]
ARM_BASE = os.environ["ARM_BASE"]
GRAPH_BASE = os.environ["GRAPH_BASE"]
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
PC_SCOPE = "https://api.partnercenter.microsoft.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def call(url, token):
    """GET url with the bearer token: the status and the gateway's reason."""
    r = requests.get(url, headers={"Authorization": "Bearer " + token}, timeout=30)
    try:
        reason = r.json().get("reason")
    except ValueError:
        reason = None
    return {"status": r.status_code, "reason": reason, "challenge": r.headers.get("www-authenticate")}


def report(results):
    print(json.dumps(results))
