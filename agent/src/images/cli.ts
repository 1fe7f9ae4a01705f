// `grove-agent image ...`: the node's image store from the command line.
//
//   grove-agent image import PATH[:TAG] [--name REF]   an OCI layout directory or oci-archive tarball
//   grove-agent image pull REF [--image-config FILE] [--pull-secret NAME]
//   grove-agent image list [-o json]
//   grove-agent image gc [--all]
//
// All take --state-dir (the agent's, default /var/lib/grove-agent) or
// --images-dir (default <state-dir>/images).
import * as path from "node:path";
import { Command, CommanderError } from "commander";
import { ImageConfigError, loadImageConfig } from "./config";
import { isImageError } from "./errors";
import { addImageLimitOptions, imageLimitsFrom, type ImageLimitFlags } from "./limits";
import { formatReference, parseReference } from "./reference";
import { ImageService } from "./service";
import type { ImageRecord } from "./types";

export interface ImageCliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: ImageCliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Runs `grove-agent image <args>`; resolves with the exit code. */
export async function imageCommand(args: readonly string[], io: ImageCliIo = defaultIo): Promise<number> {
  const code = 0;
  const withService = async (
    opts: { stateDir: string; imagesDir?: string; imageConfig?: string } & ImageLimitFlags,
    fn: (s: ImageService) => Promise<void>,
  ) => {
    const cfg = opts.imageConfig ? loadImageConfig(opts.imageConfig) : { registries: {}, pullSecrets: {} };
    const service = new ImageService({
      root: path.resolve(opts.imagesDir ?? path.join(opts.stateDir, "images")),
      registries: cfg.registries,
      pullSecrets: cfg.pullSecrets,
      limits: imageLimitsFrom(opts),
      // The operator imports what they name; symlinks on the way are still not followed.
      ociDir: path.resolve(opts.ociDir ?? "/"),
    });
    await service.init();
    try {
      await fn(service);
    } finally {
      service.close();
    }
  };
  const program = new Command("grove-agent image")
    .description("manage this node's image store")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  const common = (c: Command) =>
    addImageLimitOptions(
      c
        .option("--state-dir <dir>", "the agent's state directory", "/var/lib/grove-agent")
        .option("--images-dir <dir>", "the image store (default <state-dir>/images)"),
      "/",
    );

  common(program.command("import <path>"))
    .description("import an OCI image layout directory or oci-archive tarball (PATH or PATH:TAG)")
    .option("--name <reference>", "also record it under this reference (e.g. registry.example.com/app:1)")
    .action(async (p: string, opts: { stateDir: string; imagesDir?: string; name?: string }) => {
      const abs = p.startsWith("/") ? p : path.resolve(p);
      const reference = `oci:${abs}`;
      await withService(opts, async (s) => {
        const image = await s.pull(reference);
        io.out(`imported ${image.reference} ${image.manifestDigest} (${image.layers.length} layers)\n`);
        if (opts.name) {
          const ref = parseReference(opts.name);
          if (ref.kind !== "registry") throw new ImageConfigError(`--name: ${opts.name} is not a registry reference`);
          // The operator put it there: any namespace may start it (pull-auth.ts).
          const alias: ImageRecord = {
            ...image,
            reference: formatReference(ref),
            pullAuth: { anyone: true, identities: [] },
          };
          await s.store.putImage(alias);
          io.out(`recorded as ${alias.reference}\n`);
        }
      });
    });

  common(program.command("pull <reference>"))
    .description("pull an image into the store")
    .option("--image-config <file>", "registries and pull secrets (JSON)")
    .option("--pull-secret <name>", "credentials from the image config's pullSecrets")
    .action(
      async (
        reference: string,
        opts: { stateDir: string; imagesDir?: string; imageConfig?: string; pullSecret?: string },
      ) => {
        await withService(opts, async (s) => {
          const image = await s.pull(reference, opts.pullSecret ? { pullSecret: opts.pullSecret } : {});
          io.out(`${image.reference} ${image.manifestDigest} (${image.layers.length} layers, ${image.size} bytes)\n`);
        });
      },
    );

  common(program.command("list"))
    .description("list the images in the store")
    .option("-o, --output <format>", "table or json", "table")
    .action(async (opts: { stateDir: string; imagesDir?: string; output: string }) => {
      await withService(opts, async (s) => {
        const images = await s.listImages();
        if (opts.output === "json") return io.out(JSON.stringify({ items: images }, null, 2) + "\n");
        io.out("REFERENCE\tDIGEST\tLAYERS\tSIZE\n");
        for (const i of images)
          io.out(`${i.reference}\t${i.manifestDigest.slice(0, 19)}\t${i.layers.length}\t${i.size}\n`);
      });
    });

  common(program.command("gc"))
    .description("remove blobs and snapshots no image or container uses")
    .option("--all", "also remove images no container uses")
    .option("--grace <seconds>", "leave content younger than this alone", "600")
    .action(async (opts: { stateDir: string; imagesDir?: string; all?: boolean; grace: string }) => {
      await withService(opts, async (s) => {
        const r = await s.gc({ pruneImages: opts.all === true, graceMs: Number(opts.grace) * 1000 });
        io.out(
          `removed ${r.removedImages.length} images, ${r.removedBlobs.length} blobs, ${r.removedSnapshots.length} snapshots, ${r.removedIngests.length} partial downloads\n`,
        );
      });
    });

  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (isImageError(err) || err instanceof ImageConfigError) {
      io.err(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  return code;
}
