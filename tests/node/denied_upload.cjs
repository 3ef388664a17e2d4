// POSTs a body that the gateway refuses (the token lacks MFA) with Node's
// global fetch, COUNT times, and prints how many answers arrived. undici's
// EnvHttpProxyAgent reads HTTPS_PROXY / NO_PROXY; NODE_EXTRA_CA_CERTS adds
// the CA that issued the gateway's (or the interception) certificate.
//
// usage: node denied_upload.cjs URL SIZE COUNT
const { EnvHttpProxyAgent, setGlobalDispatcher } = require("undici");

setGlobalDispatcher(new EnvHttpProxyAgent());

async function main() {
  const [url, size, count] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const body = Buffer.alloc(size, "x");
  const statuses = [], reasons = [], connection = [], errors = [];
  for (let i = 0; i < count; i++) {
    try {
      const rsp = await fetch(url, {
        method: "POST",
        body,
        headers: { authorization: `Bearer ${process.env.TOKEN}`, "content-type": "application/octet-stream" },
      });
      const json = await rsp.json();
      statuses.push(rsp.status);
      reasons.push(json.reason ?? null);
      connection.push(rsp.headers.get("connection"));
    } catch (e) {
      const cause = e.cause ? `${e.cause.code ?? ""} ${e.cause.message ?? e.cause}` : "";
      errors.push(`${e.name}: ${e.message} ${cause}`.slice(0, 300));
    }
  }
  console.log(JSON.stringify({ answered: statuses.length, statuses, reasons, connection, errors }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
