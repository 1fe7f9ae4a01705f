// The generated bash completion, sourced in a real bash: COMP_WORDS/COMP_CWORD set as bash's
// completion would set them, then _grove's COMPREPLY read back.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { run } from "./main";
import type { CliDeps } from "./deps";

describe("grove completion", () => {
  let dir: string;
  let script: string;
  const out: string[] = [];
  const err: string[] = [];
  const deps: CliDeps = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: {},
    home: "/nonexistent",
    makeClient: () => {
      throw new Error("completion must not contact a server");
    },
    now: () => 0,
    sleep: async () => undefined,
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "grove-cli-completion-"));
    fs.mkdirSync(path.join(dir, "manifests"));
    fs.writeFileSync(path.join(dir, "manifests", "web.yaml"), "");
    expect(await run(["completion", "bash"], deps)).toBe(0);
    script = path.join(dir, "grove.bash");
    fs.writeFileSync(script, out.join("\n") + "\n");
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** What bash offers for the words typed so far (the last one is being completed). */
  const complete = (...words: string[]): string[] => {
    const quoted = words.map((w) => `'${w}'`).join(" ");
    const program = [
      `source '${script}'`,
      // `grove config get-contexts` as the real command prints it.
      `grove() { printf 'CURRENT   NAME   SERVER\\n*         prod   https://p\\n          dev    https://d\\n'; }`,
      `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _grove`,
      `printf '%s\\n' "\${COMPREPLY[@]}"`,
    ].join("\n");
    const text = execFileSync("bash", ["--norc", "--noprofile", "-c", program], { cwd: dir, encoding: "utf8" });
    return text.split("\n").filter((l) => l !== "");
  };

  it("completes commands and subcommands", () => {
    expect(complete("grove", "de")).toEqual(["describe", "delete"]);
    expect(complete("grove", "")).toEqual(expect.arrayContaining(["apply", "get", "diff", "version", "config"]));
    expect(complete("grove", "config", "")).toEqual(["get-contexts", "current-context", "use-context", "set-context"]);
    expect(complete("grove", "rollout", "un")).toEqual(["undo"]);
  });

  it("completes kinds after get, describe and delete, also past global flags and their values", () => {
    expect(complete("grove", "get", "")).toEqual([
      "apps",
      "app",
      "instances",
      "instance",
      "inst",
      "nodes",
      "node",
      "tasks",
      "task",
      "events",
      "endpoints",
      "capacity",
      // a subcommand of get of its own
      "namespaces",
    ]);
    expect(complete("grove", "-n", "team-a", "describe", "in")).toEqual(["instances", "instance", "inst"]);
    expect(complete("grove", "describe", "name")).toEqual(["namespace"]);
    expect(complete("grove", "delete", "app", "")).toEqual([]);
  });

  it("completes flags, -o formats, files after -f and context names", () => {
    expect(complete("grove", "get", "apps", "--sel")).toEqual(["--selector"]);
    expect(complete("grove", "apply", "--wa")).toEqual(["--wait"]);
    expect(complete("grove", "get", "apps", "-o", "js")).toEqual(["json", "jsonpath="]);
    expect(complete("grove", "apply", "-f", "manifests/")).toEqual(["manifests/web.yaml"]);
    expect(complete("grove", "config", "use-context", "")).toEqual(["prod", "dev"]);
    expect(complete("grove", "--context", "d")).toEqual(["dev"]);
    expect(complete("grove", "completion", "")).toEqual(["bash", "zsh"]);
  });

  const hasZsh = ["/usr/bin/zsh", "/bin/zsh"].some((f) => fs.existsSync(f));
  (hasZsh ? it : it.skip)(
    `the zsh script completes the same in a real zsh${hasZsh ? "" : " (skipped: zsh is not installed)"}`,
    async () => {
      out.length = 0;
      expect(await run(["completion", "zsh"], deps)).toBe(0);
      const zshScript = path.join(dir, "grove.zsh");
      fs.writeFileSync(zshScript, out.join("\n") + "\n");
      // As bashcompinit's _bash_complete calls it: COMP_WORDS a zsh array, COMP_CWORD 0-based.
      // zsh's compgen emulation leaves filtering by the typed prefix to compadd, so whole lists come back.
      const program = [
        `source '${zshScript}'`,
        't() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _grove; print -r -- "${(j: :)COMPREPLY}"; }',
        't grove -n x describe ""',
        't grove config ""',
        't grove get apps -o ""',
      ].join("\n");
      const text = execFileSync("zsh", ["-f", "-c", program], { cwd: dir, encoding: "utf8", env: { HOME: dir } });
      expect(text.trim().split("\n")).toEqual([
        "apps app instances instance inst nodes node tasks task namespace",
        "get-contexts current-context use-context set-context",
        "table wide yaml json name jsonpath=",
      ]);
    },
  );

  it("prints a zsh script that loads the same completion, and refuses other shells", async () => {
    out.length = 0;
    expect(await run(["completion", "zsh"], deps)).toBe(0);
    expect(out.join("\n")).toMatch(/^#compdef grove\n[\s\S]*bashcompinit[\s\S]*complete -F _grove grove$/);
    expect(await run(["completion", "fish"], deps)).toBe(1);
    expect(err).toEqual(['error: completion: unsupported shell "fish" (supported: bash, zsh)']);
  });
});
