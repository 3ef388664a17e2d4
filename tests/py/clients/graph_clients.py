"""msgraph-sdk, unmodified, against the fake authority and through the
gateway: /me and /users with an MFA sign-in, and /me without MFA, whose
ODataError must carry the gateway's description. In reverse mode the
request adapter is pointed at the gateway (base URL and allowed host)."""
import asyncio
import os
from urllib.parse import urlparse

from azure.identity import AuthorizationCodeCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from common import AUTHORITY_HOST, CLIENT_ID, CLIENT_SECRET, GRAPH_BASE, GRAPH_SCOPE, TENANT, report


def graph(code):
    credential = AuthorizationCodeCredential(TENANT, CLIENT_ID, code, "http://localhost",
                                             client_secret=CLIENT_SECRET, authority=AUTHORITY_HOST)
    if urlparse(GRAPH_BASE).hostname == "graph.microsoft.com":
        return GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE],
                                               allowed_hosts=[urlparse(GRAPH_BASE).hostname])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{GRAPH_BASE}/v1.0/"  # the SDK's own form, trailing slash included
    return GraphServiceClient(request_adapter=adapter)


async def attempt(call):
    try:
        return {"ok": await call()}
    except ODataError as e:
        error = e.error
        return {"status": e.response_status_code, "error_code": error.code if error else None,
                "error_message": error.message if error else None}
    except Exception as e:
        return {"exception": f"{type(e).__name__}: {e}"}


async def main():
    allowed = graph("code-mfa")

    async def me():
        user = await allowed.me.get()
        return user.display_name

    async def users():
        page = await allowed.users.get()
        return [u.user_principal_name for u in page.value]

    denied = graph("code-pwd")

    async def denied_me():
        user = await denied.me.get()
        return user.display_name

    report({"me": await attempt(me), "users": await attempt(users), "denied_me": await attempt(denied_me)})


asyncio.run(main())
