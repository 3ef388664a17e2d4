"""MSAL for Python against the fake authority (instance discovery off), then
each token through the gateway with requests: confidential clients with a
client secret and with a certificate (client credentials, refresh tokens),
and a public client (device code flow, refresh token)."""
import msal

from common import (AUTHORITY_HOST, CERT_PATH, CERT_THUMBPRINT, CLIENT_ID, CLIENT_SECRET, PC_BASE, PC_SCOPE,
                    PUBLIC_CLIENT_ID, TENANT, call, report)

authority = f"{AUTHORITY_HOST}/{TENANT}"
url = f"{PC_BASE}/v1/customers"
results = {}


def run(name, acquire):
    try:
        result = acquire()
    except Exception as e:  # the library refused: report it, not a crash
        results[name] = {"error": f"{type(e).__name__}: {e}"}
        return
    if "access_token" not in result:
        results[name] = {"error": result.get("error"), "description": result.get("error_description")}
        return
    results[name] = call(url, result["access_token"])


secret_app = msal.ConfidentialClientApplication(
    CLIENT_ID, client_credential=CLIENT_SECRET, authority=authority, instance_discovery=False)
run("secret_client_credentials", lambda: secret_app.acquire_token_for_client([PC_SCOPE]))
run("secret_refresh_token_mfa", lambda: secret_app.acquire_token_by_refresh_token("rt-mfa", [PC_SCOPE]))
run("secret_refresh_token_password_only", lambda: secret_app.acquire_token_by_refresh_token("rt-pwd", [PC_SCOPE]))

with open(CERT_PATH) as f:
    key = f.read().split("-----BEGIN CERTIFICATE-----")[0]
cert_app = msal.ConfidentialClientApplication(
    CLIENT_ID, client_credential={"private_key": key, "thumbprint": CERT_THUMBPRINT}, authority=authority,
    instance_discovery=False)
run("certificate_client_credentials", lambda: cert_app.acquire_token_for_client([PC_SCOPE]))
run("certificate_refresh_token_mfa", lambda: cert_app.acquire_token_by_refresh_token("rt-mfa", [PC_SCOPE]))

public_app = msal.PublicClientApplication(PUBLIC_CLIENT_ID, authority=authority, instance_discovery=False)


def device_flow():
    flow = public_app.initiate_device_flow(scopes=[PC_SCOPE])
    if "user_code" not in flow:
        return flow
    return public_app.acquire_token_by_device_flow(flow)


run("public_device_code", device_flow)
run("public_refresh_token_mfa", lambda: public_app.acquire_token_by_refresh_token("rt-mfa", [PC_SCOPE]))
report(results)
