// What the official JavaScript client (nats on npm) sees of vlan-nats
// through its services client (ADR-32): every service that answers PING,
// and the INFO and STATS of the names given.  Prints one JSON object.
//   node services.mjs URL NAME...   (a token in $NATS_TOKEN, if any)
import { connect } from "nats";

const [url, ...names] = process.argv.slice(2);
const nc = await connect({ servers: url, token: process.env.NATS_TOKEN || undefined });
const client = nc.services.client();

async function all(query) {
  const out = [];
  for await (const answer of await query) {
    out.push(answer);
  }
  return out;
}

const result = { ping: await all(client.ping()), info: {}, stats: {} };
for (const name of names) {
  result.info[name] = await all(client.info(name));
  result.stats[name] = await all(client.stats(name));
}
console.log(JSON.stringify(result));
await nc.close();
