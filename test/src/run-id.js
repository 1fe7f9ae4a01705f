// The jest run's id, drawn once in the global setup and exported as
// GROVE_TEST_RUN_ID before any worker starts, so every worker, and every
// process a test starts, names what it makes after the same run
// (test/src/harness/run-id.ts adds the worker number). The leak check
// (leaks.js) counts outside CI only objects whose names carry it.
"use strict";
const { randomInt } = require("node:crypto");

const RUN_ID_ENV = "GROVE_TEST_RUN_ID";
const FORMAT = /^r[a-z0-9]{5}$/;

/** The run id from the environment (checked), or a new one put there. */
function runId() {
  const set = process.env[RUN_ID_ENV];
  if (set !== undefined) {
    if (!FORMAT.test(set)) throw new Error(`${RUN_ID_ENV}=${set}: expected "r" and five of [a-z0-9]`);
    return set;
  }
  const id =
    "r" +
    randomInt(36 ** 5)
      .toString(36)
      .padStart(5, "0");
  process.env[RUN_ID_ENV] = id;
  return id;
}

module.exports = { runId, RUN_ID_ENV };
