// node-redlock 5 (redlock@5.0.0-beta.2) over one ioredis client, for the
// comparison of tools/bench/peers/run.py. Settings are the library's
// defaults (retryDelay 200 ms, retryJitter 100 ms) except retryCount: -1
// (never give up), since a wait must not fail within a run for any library.
'use strict';
const Redis = require('ioredis');
const Redlock = require('redlock').default;
const { main, hostPort } = require('./worker');

main('node-redlock', async (job) => {
  const client = new Redis(hostPort(job.redis));
  const redlock = new Redlock([client], { retryCount: -1 });
  // redlock emits "error" for every failed attempt, a busy lock included:
  // those are its waiting, not failures.
  redlock.on('error', () => {});
  let held = null;
  return {
    acquire: async () => {
      held = await redlock.acquire([job.key], job.ttl_ms);
    },
    release: async () => {
      await held.release();
      held = null;
    },
    close: async () => client.quit(),
  };
});
