// An OrbitDB JS 4.0.0 peer for orbit's live interop test (tests/orbitdb_peer.py drives it).
//
// One Node process: helia 6 (libp2p on 127.0.0.1 only: TCP, noise, yamux + mplex, identify, gossipsub; bitswap;
// no bootstrap, mDNS, DHT, relays or HTTP gateways) and @orbitdb/core 4.0.0 with its own Sync.
// Kubo (go-libp2p) speaks only yamux, js-ipfs 0.66 only mplex: both are offered, yamux first. js-ipfs's bitswap opens one mplex stream
// per message (each want, cancel and block), and @libp2p/mplex aborts a connection on which the remote
// opens more than `disconnectThreshold` (default 5) streams in a second, or sends more than that many
// frames for streams already closed: the connection then dies and bitswap stalls ~10-15 s until a redial.
// The threshold is raised far above what a test does.
//
// Protocol: one JSON object per line on stdin (a command with an "id"), one JSON object per line on
// stdout: a reply {"id", "ok": true, ...} or {"id", "ok": false, "error"}, or an event {"event", ...}:
//   ready     {peerId, addrs, identity, node}        once, when helia and OrbitDB are up
//   update    {hash, value, next, local}             every entry OrbitDB admits (own writes and joined)
//   join / leave / sync-error {peer | message}       OrbitDB Sync's events
//   rejected  {message}                               OrbitDB refused an entry it received (it only logs it)
// Commands:
//   dial {addr}                      connect to a peer (e.g. the js-ipfs node's swarm address)
//   open {name, type, write}         open (create) a database with an 'ipfs' access controller
//   subscribers {}                   the peers gossipsub knows on the database's topic
//   add {value}                      events: add(value); replies {hash}
//   all {}                           replies {all: [{hash, value}], heads: [hash]}
//   publish {hex}                    publish raw bytes on the database's topic (adversarial tests)
//   stop {}                          close everything and exit 0
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { bitswap } from '@helia/block-brokers'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { mplex } from '@libp2p/mplex'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createOrbitDB, IPFSAccessController } from '@orbitdb/core'
import { createHelia } from 'helia'

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

// OrbitDB's Database.applyOperation catches a failed join and only console.error()s it: surface it.
console.error = (...args) => {
  const text = args.map(a => (a && a.message) ? a.message : String(a)).join(' ')
  emit({ event: 'rejected', message: text.slice(0, 2000) })
}

const directory = process.argv[2] || fs.mkdtempSync(path.join(os.tmpdir(), 'orbitdb-peer-'))

const ipfs = await createHelia({
  libp2p: {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(), mplex({ disconnectThreshold: 100000 })],
    peerDiscovery: [],
    services: {
      identify: identify(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false })
    }
  },
  blockBrokers: [bitswap()],
  routers: []
})
const orbitdb = await createOrbitDB({ ipfs, directory: path.join(directory, 'orbitdb'), id: 'js-peer' })
let db = null

const handlers = {
  async dial ({ addr }) {
    await ipfs.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(20000) })
    return {}
  },
  async open ({ name, type, write }) {
    db = await orbitdb.open(name, { type, AccessController: IPFSAccessController({ write }) })
    db.events.on('update', (entry) => emit({
      event: 'update',
      hash: entry.hash,
      value: entry.payload?.value ?? null,
      next: entry.next,
      local: entry.identity === orbitdb.identity.hash
    }))
    db.events.on('join', (peer) => emit({ event: 'join', peer: String(peer) }))
    db.events.on('leave', (peer) => emit({ event: 'leave', peer: String(peer) }))
    db.events.on('error', (e) => emit({ event: 'sync-error', message: String(e?.message ?? e).slice(0, 2000) }))
    return { address: db.address }
  },
  async subscribers () {
    return { peers: ipfs.libp2p.services.pubsub.getSubscribers(db.address).map(String) }
  },
  async add ({ value }) {
    return { hash: await db.add(value) }
  },
  async all () {
    const all = (await db.all()).map(({ hash, value }) => ({ hash, value }))
    const heads = (await db.log.heads()).map(e => e.hash)
    return { all, heads }
  },
  async publish ({ hex }) {
    await ipfs.libp2p.services.pubsub.publish(db.address, Buffer.from(hex, 'hex'))
    return {}
  },
  async stop () {
    if (db) await db.close()
    await orbitdb.stop()
    await ipfs.stop()
    return {}
  }
}

emit({
  event: 'ready',
  peerId: String(ipfs.libp2p.peerId),
  addrs: ipfs.libp2p.getMultiaddrs().map(String),
  identity: orbitdb.identity.id,
  node: process.version
})

// Commands run one at a time, in order.
let chain = Promise.resolve()
const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => {
  chain = chain.then(async () => {
    let command
    try {
      command = JSON.parse(line)
    } catch (e) {
      emit({ id: null, ok: false, error: `not JSON: ${line.slice(0, 200)}` })
      return
    }
    const handler = handlers[command.cmd]
    if (!handler) {
      emit({ id: command.id, ok: false, error: `unknown command ${command.cmd}` })
      return
    }
    try {
      emit({ id: command.id, ok: true, ...(await handler(command)) })
    } catch (e) {
      emit({ id: command.id, ok: false, error: String(e?.stack ?? e).slice(0, 4000) })
    }
    if (command.cmd === 'stop') process.exit(0)
  })
})
// stdin closed (the driver went away): stop.
lines.on('close', () => { chain.then(() => handlers.stop()).finally(() => process.exit(0)) })
