"""A password (ROPC) sign-in through the egress proxy, which guards
login.microsoftonline.com with a login route: MSAL's
acquire_token_by_username_password and azure-identity's
UsernamePasswordCredential, and what each tells its caller about the
gateway's refusal."""
import msal
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import UsernamePasswordCredential

from common import AUTHORITY_HOST, PC_SCOPE, PUBLIC_CLIENT_ID, TENANT, report

results = {}
app = msal.PublicClientApplication(PUBLIC_CLIENT_ID, authority=f"{AUTHORITY_HOST}/{TENANT}", instance_discovery=False)
answer = app.acquire_token_by_username_password("tech@partner.example", "not-a-real-password", scopes=[PC_SCOPE])
results["msal"] = {key: answer.get(key) for key in ("error", "error_description", "reason", "correlation_id")}
results["msal"]["access_token"] = "access_token" in answer

credential = UsernamePasswordCredential(
    PUBLIC_CLIENT_ID, "tech@partner.example", "not-a-real-password", tenant_id=TENANT,
    authority=AUTHORITY_HOST.removeprefix("https://"), disable_instance_discovery=True)
try:
    credential.get_token(PC_SCOPE)
    results["azure_identity"] = {"raised": None}
except ClientAuthenticationError as e:
    results["azure_identity"] = {"raised": type(e).__name__, "message": e.message}
report(results)
