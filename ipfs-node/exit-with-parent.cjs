// Loaded with `node --require` by tests/ipfs_node.py: a test node must not outlive the process that
// started it (a crashed or killed test run would otherwise leave daemons running). When the parent
// dies the node is re-parented, so its parent pid changes: then exit.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(1)
}, 1000).unref()
