// The loop every Node driver runs, in the protocol of tools/bench/peer.cc
// (the library's worker) and redis_py.py: one job line on stdin, "ready"
// once connected and warmed up, then the windows to run in, as [start, stop)
// pairs of CLOCK_MONOTONIC instants (process.hrtime.bigint reads that clock
// on Linux, as Python's time.monotonic_ns and C++'s steady_clock do, so
// every process's instants compare), and one result line: pairs, errors,
// busy_ns (time spent running, summed over the windows) and the holds. A
// driver supplies only how its library opens a client, acquires and
// releases.
'use strict';
const readline = require('readline');

const now = () => process.hrtime.bigint();
const sleepMs = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// `open(job)` resolves to {acquire(), release(), close()}; acquire resolves
// once held and rejects on giving up.
async function serve(library, open) {
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const readJson = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('stdin closed before the expected line');
    return JSON.parse(value);
  };
  const job = await readJson();
  const lock = await open(job);
  await lock.acquire(); // warm-up: connection open, scripts loaded
  await lock.release();
  process.stdout.write('{"ready":true}\n');

  const go = await readJson();
  const hold = job.hold_ms || 0;
  const outside = job.outside_ms || 0;
  let pairs = 0;
  let errors = 0;
  let busy = 0n;
  const intervals = [];
  for (const [s, e] of go.windows) {
    const stop = BigInt(e);
    const wait = Number(BigInt(s) - now()) / 1e6;
    if (wait > 0) await sleepMs(wait);
    const began = now();
    while (now() < stop) {
      try {
        await lock.acquire();
      } catch (err) {
        errors++;
        continue;
      }
      if (job.mode === 'uncontended') {
        await lock.release().catch(() => errors++);
        pairs++;
        continue;
      }
      const acquired = now();
      if (hold > 0) await sleepMs(hold);
      const released = now();
      await lock.release().catch(() => errors++);
      intervals.push(`[${acquired},${released}]`);
      pairs++;
      if (outside > 0) await sleepMs(outside);
    }
    busy += now() - began;
  }
  // BigInt has no JSON form: the nanosecond instants are written as exact
  // integers by hand.
  process.stdout.write(
    `{"library":${JSON.stringify(library)},"mode":${JSON.stringify(job.mode)},` +
      `"pid":${process.pid},"pairs":${pairs},"errors":${errors},` +
      `"busy_ns":${busy},"intervals":[${intervals.join(',')}]}\n`,
  );
  await lock.close();
}

// The job's "redis" is host:port.
function hostPort(addr) {
  const at = addr.lastIndexOf(':');
  return { host: addr.slice(0, at), port: Number(addr.slice(at + 1)) };
}

function main(library, open) {
  serve(library, open).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${library}: ${e && e.stack ? e.stack : e}\n`);
      process.exit(1);
    },
  );
}

module.exports = { main, hostPort };
