// Node 20 lacks Promise.withResolvers, which one of js-ipfs's dependencies calls.
// Loaded with `node --require` before the js-ipfs CLI starts.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
