// redis-semaphore over one ioredis client, for the comparison of
// tools/bench/peers/run.py: its Mutex for the uncontended and contended
// scenarios, its Semaphore for the semaphore one. Settings are the
// library's defaults (retryInterval 10 ms) except the timeouts: the lease is
// the run's ttl, and a wait may take 60 s so that it never fails within a
// run (the other libraries wait that long too).
'use strict';
const Redis = require('ioredis');
const { Mutex, Semaphore } = require('redis-semaphore');
const { main, hostPort } = require('./worker');

main('redis-semaphore', async (job) => {
  const client = new Redis(hostPort(job.redis));
  const options = { lockTimeout: job.ttl_ms, acquireTimeout: 60000 };
  const lock =
    job.mode === 'semaphore'
      ? new Semaphore(client, job.key, job.permits, options)
      : new Mutex(client, job.key, options);
  return {
    acquire: () => lock.acquire(),
    release: () => lock.release(),
    close: async () => client.quit(),
  };
});
