// Two projects: `unit` (next to the code; no network, etcd or root) and
// `integration` (test/: real etcd, the real addon on the real kernel).
/** @type {import('jest').Config} */
const transform = { "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.jest.json" }] };
const moduleNameMapper = {
  "^@grove/control-plane/scheduler$": "<rootDir>/control-plane/src/scheduler",
  "^@grove/(common|proto|api|control-plane|agent|sim)$": "<rootDir>/$1/src",
};
module.exports = {
  projects: [
    {
      displayName: "unit",
      rootDir: __dirname,
      testMatch: ["<rootDir>/{common,proto,api,control-plane,agent,sim}/src/**/*.test.ts"],
      transform,
      moduleNameMapper,
      testEnvironment: "node",
    },
    {
      displayName: "integration",
      rootDir: __dirname,
      testMatch: ["<rootDir>/test/src/**/*.test.ts"],
      transform,
      moduleNameMapper,
      testEnvironment: "node",
      setupFilesAfterEnv: ["<rootDir>/test/src/jest-setup.ts"],
      globalSetup: "<rootDir>/test/src/global-setup.js",
      globalTeardown: "<rootDir>/test/src/global-teardown.js",
    },
  ],
};
