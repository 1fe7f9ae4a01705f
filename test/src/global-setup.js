"use strict";
const fs = require("node:fs");
const { snapshot, SNAPSHOT_FILE } = require("./leaks");

module.exports = async () => {
  fs.writeFileSync(SNAPSHOT_FILE, JSON.stringify(snapshot()));
};
