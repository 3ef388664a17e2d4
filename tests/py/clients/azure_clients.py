"""azure-identity and azure-core against the fake authority, through the
gateway:
- ClientSecretCredential and CertificateCredential get tokens;
- a PipelineClient with BearerTokenCredentialPolicy(enable_cae=True) and an
  AuthorizationCodeCredential whose user signed in without MFA: the gateway
  answers the insufficient_claims challenge, azure-core decodes the claims
  and asks again, the authority honours them, the retry is allowed;
- azure-mgmt-resource: ResourceManagementClient.resource_groups.list()
  through an ARM route, with and without MFA (HttpResponseError)."""
from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, SansIOHTTPPolicy
from azure.core.rest import HttpRequest
from azure.identity import AuthorizationCodeCredential, CertificateCredential, ClientSecretCredential
from azure.mgmt.resource.resources import ResourceManagementClient

from common import (ARM_BASE, ARM_SCOPE, AUTHORITY_HOST, CERT_PATH, CLIENT_ID, CLIENT_SECRET, PC_BASE, PC_SCOPE,
                    SUBSCRIPTION, TENANT, report)

results = {}
options = {"authority": AUTHORITY_HOST, "disable_instance_discovery": True}


def user(code):
    return AuthorizationCodeCredential(TENANT, CLIENT_ID, code, "http://localhost", client_secret=CLIENT_SECRET,
                                       authority=AUTHORITY_HOST)


for name, credential in [
    ("client_secret_credential", ClientSecretCredential(TENANT, CLIENT_ID, CLIENT_SECRET, **options)),
    ("certificate_credential", CertificateCredential(TENANT, CLIENT_ID, certificate_path=CERT_PATH, **options)),
]:
    try:
        results[name] = {"token": bool(credential.get_token(PC_SCOPE).token)}
    except Exception as e:
        results[name] = {"error": f"{type(e).__name__}: {e}"}


class Recorder(SansIOHTTPPolicy):
    """Sees every attempt on the wire, the challenged one included."""

    def __init__(self):
        self.seen = []

    def on_response(self, request, response):
        http = response.http_response
        self.seen.append({"status": http.status_code, "challenge": http.headers.get("WWW-Authenticate")})


recorder = Recorder()
client = PipelineClient(base_url=PC_BASE, policies=[
    BearerTokenCredentialPolicy(user("code-pwd"), PC_SCOPE, enable_cae=True), recorder])
try:
    response = client.send_request(HttpRequest("GET", f"{PC_BASE}/v1/customers"))
    results["step_up"] = {"status": response.status_code, "attempts": recorder.seen}
except Exception as e:
    results["step_up"] = {"error": f"{type(e).__name__}: {e}", "attempts": recorder.seen}


def resource_groups(code):
    arm = ResourceManagementClient(user(code), SUBSCRIPTION, base_url=ARM_BASE, credential_scopes=[ARM_SCOPE])
    try:
        return {"names": [group.name for group in arm.resource_groups.list()]}
    except HttpResponseError as e:
        error = e.error
        return {"status": e.status_code, "message": e.message,
                "error_code": getattr(error, "code", None), "error_message": getattr(error, "message", None)}


results["resource_groups_mfa"] = resource_groups("code-mfa")
results["resource_groups_password_only"] = resource_groups("code-pwd")
report(results)
