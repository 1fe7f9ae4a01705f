// Grove for front ends, against one grove-server and one grove-agent on this
// kernel shared by the tests of this file:
// - a client generated from /openapi.json: openapi-typescript turns the
//   server's document into types, tsc (strict) type-checks
//   test/openapi-client/calls.ts against them (its ts-expect-error directives
//   fail the compile when the types are too loose), and the compiled program
//   lists, creates and watches Apps against the server;
// - the operator dashboard in a real browser: Debian's chromium (headless,
//   driven by playwright-core). Sign in with a token, apply an App from the
//   CLI, see it appear and turn Running, open its instance and see its log
//   lines stream in. Screenshots go to test-artifacts/ (git-ignored); the page
//   must raise no CSP violation.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { GroveClient } from "@grove/api";
import { REPO_ROOT, runCli, waitFor, type ServerProcess, type Started } from "./harness/processes";
import { startMachine, type TestMachine } from "./harness/machine";
import { RUN_TAG } from "./harness/run-id";

const NODE = "it-ui-node";
const CHROMIUM = process.env.GROVE_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = path.join(REPO_ROOT, "test-artifacts");

const APP_YAML = `apiVersion: grove/v1
kind: App
metadata: { name: uiticker, labels: { suite: ui } }
spec:
  rootfs: busybox
  command: ["/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo ui-line $i; sleep 0.3; done"]
  instances: 1
  stopGracePeriodSeconds: 1
  resources: { cpu: 100m, memory: 32Mi, pids: 32 }
`;

const node = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileSync(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: "utf8" });

describe("front ends: a generated client and the dashboard at /ui in chromium", () => {
  let dir: string;
  let m: TestMachine;
  let server: ServerProcess;
  let agent: Started;
  let client: GroveClient;
  let browser: Browser | undefined;
  /** The browser context of the test running (each test opens its own page). */
  let context: BrowserContext | undefined;
  let cspViolations: string[] = [];

  /** A new page in a context of its own (no session left by another test); CSP violations are collected. */
  async function openPage(): Promise<Page> {
    if (!fs.existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install chromium (deploy/setup.sh does)`);
    // As root chromium needs --no-sandbox; the page is this test's own server.
    browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    // The cluster CA is the test's own: the browser is told to accept the server's certificate.
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    page.on("console", (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  }

  /** Signs in with the admin token on /ui and waits for the overview to show the node. */
  async function signIn(page: Page): Promise<void> {
    await page.goto(`${server.url}/ui/`);
    await page.fill("#token", server.adminToken);
    await page.click("#signin button");
    await page.waitForSelector(`#nodes td:text-is("${NODE}")`, { timeout: 30_000 });
  }

  /** Applies uiticker with the CLI, as a user would. */
  async function applyTicker(): Promise<void> {
    const file = path.join(dir, "uiticker.yaml");
    fs.writeFileSync(file, APP_YAML);
    const applied = await runCli(["apply", "-f", file], {
      GROVE_SERVER: server.url,
      GROVE_TOKEN: server.adminToken,
      HOME: dir,
      GROVE_CONFIG: "",
    });
    expect(applied).toMatchObject({ code: 0 });
  }

  beforeAll(async () => {
    m = await startMachine("grove-ui");
    ({ dir, server } = m);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    agent = await m.startAgent({
      nodeName: NODE,
      cgroupParent: `grove-ui-${RUN_TAG}`,
    });
    client = m.client;
  }, 180_000);

  beforeEach(() => {
    cspViolations = [];
  });

  // After each test: its page closed, every App deleted and its instances gone.
  afterEach(async () => {
    await context?.close();
    context = undefined;
    if (!client) return;
    for (const a of (await client.list("App", { namespace: "default" })).items) {
      await client.delete("App", a.metadata.name, "default");
    }
    await waitFor(
      "every instance to be gone",
      async () => (await client.list("Instance", { namespace: "default" })).items.length === 0,
      60_000,
    );
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await agent?.stop(30_000);
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("a TypeScript client generated from /openapi.json compiles strictly and lists, creates and watches Apps", async () => {
    const out = path.join(dir, "client");
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, "openapi.json"), await (await fetch(`${server.url}/openapi.json`)).text());
    const generator = path.join(REPO_ROOT, "node_modules/openapi-typescript/bin/cli.js");
    node([generator, path.join(out, "openapi.json"), "-o", path.join(out, "schema.d.ts")]);
    const schema = fs.readFileSync(path.join(out, "schema.d.ts"), "utf8");
    expect(schema).toMatch(/"\/v1\/namespaces\/\{namespace\}\/apps": \{/);
    expect(schema).toMatch(/planApply: \{/);
    fs.copyFileSync(path.join(REPO_ROOT, "test/openapi-client/calls.ts"), path.join(out, "calls.ts"));
    const tsc = path.join(REPO_ROOT, "node_modules/typescript/bin/tsc");
    const flags = ["--strict", "--noUncheckedIndexedAccess", "--target", "ES2022", "--module", "commonjs"];
    flags.push("--lib", "ES2022,DOM", "--types", "node", "--typeRoots", path.join(REPO_ROOT, "node_modules/@types"));
    // Declaration files (the generated one, @types/node) are taken as they are: calls.ts is what is checked.
    flags.push("--skipLibCheck");
    try {
      node([tsc, ...flags, "--outDir", path.join(out, "js"), path.join(out, "calls.ts")]);
    } catch (err) {
      throw new Error(`the generated client does not type-check:\n${(err as { stdout?: string }).stdout ?? err}`);
    }
    const env = { GROVE_SERVER: server.url, GROVE_TOKEN: server.adminToken };
    const result = JSON.parse(node([path.join(out, "js", "calls.js")], env).trim()) as Record<string, unknown>;
    expect(result).toEqual({
      apiVersion: "grove/v1",
      createdUid: expect.stringMatching(/.+/),
      listed: ["openapi-made"],
      watched: "ADDED openapi-made",
    });
  }, 120_000);

  it("refuses a wrong token, then signs in and shows the node", async () => {
    const page = await openPage();
    await page.goto(`${server.url}/ui/`);
    await page.fill("#token", "not-the-token");
    await page.click("#signin button");
    await page.waitForSelector("#signin .error", { timeout: 20_000 });
    await page.fill("#token", server.adminToken);
    await page.click("#signin button");
    await page.waitForSelector(`#nodes td:text-is("${NODE}")`, { timeout: 30_000 });
    await page.waitForSelector("#nodes .ok", { timeout: 30_000 });
    // The token lives in sessionStorage, never in the address.
    expect(page.url()).not.toContain(server.adminToken);
    expect(await page.evaluate('sessionStorage.getItem("grove.token")')).toBe(server.adminToken);
    await page.waitForSelector("#shapes tbody tr", { timeout: 20_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "ui-overview.png"), fullPage: true });
    expect(cspViolations).toEqual([]);
  }, 90_000);

  it("shows an App applied from the CLI appear and turn Running, live", async () => {
    const page = await openPage();
    await signIn(page);
    await page.goto(`${server.url}/ui/#/apps`);
    await page.waitForSelector("main h2:text-is('Apps')");
    await applyTicker();
    // No reload: the watch brings the App in, then its instance's states.
    const section = '[data-app="default/uiticker"]';
    await page.waitForSelector(section, { timeout: 30_000 });
    await page.waitForSelector(`${section} .state-Running`, { timeout: 90_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "ui-apps.png"), fullPage: true });
    expect(cspViolations).toEqual([]);
  }, 150_000);

  it("streams the instance's log lines and shows its events and placement", async () => {
    await applyTicker();
    const page = await openPage();
    await signIn(page);
    await page.goto(`${server.url}/ui/#/apps`);
    await page.waitForSelector('[data-app="default/uiticker"] .state-Running', { timeout: 90_000 });
    await page.click('a[href="#/instance/default/uiticker-0"]');
    await page.waitForSelector("#log", { timeout: 10_000 });
    // The number of the last line in the page's log (0: none yet).
    const lastLine = async () => {
      const all = [...((await page.textContent("#log")) ?? "").matchAll(/ui-line (\d+)/g)];
      return Number(all.at(-1)?.[1] ?? 0);
    };
    const first = await waitFor("a log line in the page", async () => (await lastLine()) || undefined, 30_000);
    // Lines keep arriving on the open stream (one every 0.3 s).
    await waitFor("3 more log lines in the page", async () => (await lastLine()) >= first + 3, 30_000);
    await page.waitForSelector(`#explain :text("chosen: ${NODE}")`, { timeout: 10_000 });
    await page.waitForSelector("#events td:text-is('Scheduled')", { timeout: 20_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "ui-instance.png"), fullPage: true });
    // Back on the overview, the node's bars show the App's allocation (docs/dashboard.md's picture).
    await page.goto(`${server.url}/ui/#/`);
    await page.waitForSelector(`#nodes td:text-is("${NODE}") ~ td:text-is("1")`, { timeout: 30_000 });
    await page.waitForSelector('#nodes .bar-label:text("100m /")', { timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, "ui-overview-running.png"), fullPage: true });
    expect(cspViolations).toEqual([]);
  }, 150_000);
});
