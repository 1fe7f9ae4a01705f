// Argument checks done in TypeScript before anything reaches the native core
// (the native side then only defends against crashes, not against bad input).
import * as fs from "node:fs";
import * as path from "node:path";
import { constants as osConstants } from "node:os";

import { RuntimeError } from "./errors";
import { RUNTIME_CLASS_PATTERN } from "./runtime-handlers";
import type { ContainerSpec } from "./types";

export const CONTAINER_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const HOSTNAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$/;
const ENV_KEY_PATTERN = /^[^=\0]+$/;

function invalid(message: string): never {
  throw new RuntimeError("INVALID_SPEC", message);
}

export function validateId(id: unknown): asserts id is string {
  if (typeof id !== "string" || !CONTAINER_ID_PATTERN.test(id) || id === "." || id === "..") {
    invalid(`container id ${JSON.stringify(id)} must match ${CONTAINER_ID_PATTERN} and not be "." or ".."`);
  }
}

function noNul(what: string, value: string): void {
  if (value.includes("\0")) invalid(`${what} contains a NUL byte`);
}

function positiveInteger(what: string, value: unknown): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    invalid(`${what} must be a positive integer, got ${String(value)}`);
  }
}

export interface ValidateOptions {
  /** Check that rootfs is an existing directory (off for the fake runtime). */
  checkFilesystem: boolean;
}

/** Throws RuntimeError INVALID_SPEC naming the first problem found. */
export function validateSpec(spec: ContainerSpec, opts: ValidateOptions): void {
  if (spec === null || typeof spec !== "object") invalid("spec must be an object");
  validateId(spec.id);

  if (typeof spec.rootfs !== "string" || !path.isAbsolute(spec.rootfs)) {
    invalid(`rootfs ${JSON.stringify(spec.rootfs)} must be an absolute path`);
  }
  noNul("rootfs", spec.rootfs);
  if (path.resolve(spec.rootfs) === "/") invalid("rootfs must not be the host's /");
  if (opts.checkFilesystem) {
    let st: fs.Stats;
    try {
      st = fs.statSync(spec.rootfs);
    } catch {
      invalid(`rootfs ${spec.rootfs} does not exist`);
    }
    if (!st.isDirectory()) invalid(`rootfs ${spec.rootfs} is not a directory`);
  }

  if (spec.usersFrom !== undefined) {
    if (typeof spec.usersFrom !== "string" || !path.isAbsolute(spec.usersFrom)) {
      invalid(`usersFrom ${JSON.stringify(spec.usersFrom)} must be an absolute path`);
    }
    noNul("usersFrom", spec.usersFrom);
  }

  if (
    spec.runtimeClass !== undefined &&
    (typeof spec.runtimeClass !== "string" || !RUNTIME_CLASS_PATTERN.test(spec.runtimeClass))
  ) {
    invalid(`runtimeClass ${JSON.stringify(spec.runtimeClass)} must match ${RUNTIME_CLASS_PATTERN}`);
  }

  if (!Array.isArray(spec.command) || spec.command.length === 0) invalid("command must be a non-empty array");
  spec.command.forEach((arg, i) => {
    if (typeof arg !== "string") invalid(`command[${i}] must be a string`);
    noNul(`command[${i}]`, arg);
  });
  if (spec.command[0] === "") invalid("command[0] must not be empty");

  if (spec.env === null || typeof spec.env !== "object") invalid("env must be an object");
  for (const [key, value] of Object.entries(spec.env)) {
    if (!ENV_KEY_PATTERN.test(key)) invalid(`env key ${JSON.stringify(key)} must be non-empty without "="`);
    if (typeof value !== "string") invalid(`env ${key} must be a string`);
    noNul(`env ${key}`, value);
  }

  if (spec.workingDir !== undefined) {
    if (typeof spec.workingDir !== "string" || !spec.workingDir.startsWith("/")) {
      invalid(`workingDir ${JSON.stringify(spec.workingDir)} must be an absolute path`);
    }
    noNul("workingDir", spec.workingDir);
  }

  if (typeof spec.hostname !== "string" || !HOSTNAME_PATTERN.test(spec.hostname)) {
    invalid(`hostname ${JSON.stringify(spec.hostname)} must be 1..64 letters, digits, "." or "-"`);
  }

  if (spec.resources === null || typeof spec.resources !== "object") invalid("resources must be an object");
  positiveInteger("resources.cpuMillis", spec.resources.cpuMillis);
  positiveInteger("resources.memoryBytes", spec.resources.memoryBytes);
  positiveInteger("resources.pids", spec.resources.pids);

  if (typeof spec.logPath !== "string" || !path.isAbsolute(spec.logPath)) {
    invalid(`logPath ${JSON.stringify(spec.logPath)} must be an absolute path`);
  }
  noNul("logPath", spec.logPath);

  if (spec.netnsPath !== undefined) {
    if (typeof spec.netnsPath !== "string" || !path.isAbsolute(spec.netnsPath)) {
      invalid(`netnsPath ${JSON.stringify(spec.netnsPath)} must be an absolute path`);
    }
    noNul("netnsPath", spec.netnsPath);
    if (opts.checkFilesystem && !fs.existsSync(spec.netnsPath)) {
      invalid(`netnsPath ${spec.netnsPath} does not exist`);
    }
  }

  if (spec.mounts !== undefined) validateMounts(spec.mounts, opts);
  if (spec.userNamespace !== undefined) validateUserNamespace(spec.userNamespace);
  if (spec.hostCgroupNamespace !== undefined && typeof spec.hostCgroupNamespace !== "boolean") {
    invalid("hostCgroupNamespace must be a boolean");
  }
}

export const MAX_ID_MAPPINGS = 5;
const MAX_ID = 2 ** 32 - 1;

function validateUserNamespace(userns: unknown): void {
  if (userns === null || typeof userns !== "object") invalid("userNamespace must be an object");
  for (const key of ["uidMap", "gidMap"] as const) {
    const what = `userNamespace.${key}`;
    const list = (userns as Record<string, unknown>)[key];
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ID_MAPPINGS) {
      invalid(`${what} must be an array of 1 to ${MAX_ID_MAPPINGS} mappings`);
    }
    const seen: { containerId: number; hostId: number; size: number }[] = [];
    (list as unknown[]).forEach((m, i) => {
      if (m === null || typeof m !== "object") invalid(`${what}[${i}] must be an object`);
      const { containerId, hostId, size } = m as Record<string, unknown>;
      for (const [name, v] of [
        ["containerId", containerId],
        ["hostId", hostId],
      ] as const) {
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > MAX_ID) {
          invalid(`${what}[${i}].${name} must be an integer from 0 to ${MAX_ID}, got ${String(v)}`);
        }
      }
      positiveInteger(`${what}[${i}].size`, size);
      const c = containerId as number;
      const h = hostId as number;
      const z = size as number;
      if (c + z > MAX_ID + 1 || h + z > MAX_ID + 1) invalid(`${what}[${i}] runs past id ${MAX_ID}`);
      for (const o of seen) {
        if (c < o.containerId + o.size && o.containerId < c + z)
          invalid(`${what}[${i}] overlaps another container range`);
        if (h < o.hostId + o.size && o.hostId < h + z) invalid(`${what}[${i}] overlaps another host range`);
      }
      seen.push({ containerId: c, hostId: h, size: z });
    });
    if (!seen.some((m) => m.containerId === 0)) invalid(`${what} must map container id 0 (the container's root)`);
  }
  const idmap = (userns as Record<string, unknown>).idmapRootfs;
  if (idmap !== undefined && typeof idmap !== "boolean") invalid("userNamespace.idmapRootfs must be a boolean");
}

export const MAX_MOUNTS = 16;

function validateMounts(mounts: unknown, opts: ValidateOptions): void {
  if (!Array.isArray(mounts)) invalid("mounts must be an array");
  if (mounts.length > MAX_MOUNTS) invalid(`mounts: ${mounts.length} mounts, at most ${MAX_MOUNTS}`);
  (mounts as unknown[]).forEach((m, i) => {
    const what = `mounts[${i}]`;
    if (m === null || typeof m !== "object") invalid(`${what} must be an object`);
    const { source, destination, readonly, recursive } = m as Record<string, unknown>;
    if (typeof source !== "string" || !path.isAbsolute(source)) {
      invalid(`${what}.source ${JSON.stringify(source)} must be an absolute path`);
    }
    noNul(`${what}.source`, source);
    if (typeof destination !== "string" || !destination.startsWith("/")) {
      invalid(`${what}.destination ${JSON.stringify(destination)} must be an absolute path`);
    }
    noNul(`${what}.destination`, destination);
    const parts = destination.split("/").filter((p) => p !== "");
    if (parts.length === 0) invalid(`${what}.destination must not be /`);
    if (parts.some((p) => p === ".." || p === ".")) {
      invalid(`${what}.destination ${JSON.stringify(destination)} must not have "." or ".." components`);
    }
    if (readonly !== undefined && typeof readonly !== "boolean") invalid(`${what}.readonly must be a boolean`);
    if (recursive !== undefined && typeof recursive !== "boolean") invalid(`${what}.recursive must be a boolean`);
    if (opts.checkFilesystem) {
      let st: fs.Stats;
      try {
        st = fs.statSync(source);
      } catch {
        invalid(`${what}.source ${source} does not exist`);
      }
      if (!st.isFile() && !st.isDirectory()) invalid(`${what}.source ${source} is not a regular file or directory`);
    }
  });
}

/** "SIGTERM" | 15 -> 15; throws INVALID_SPEC for unknown names or numbers. */
export function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === "number") {
    if (!Number.isInteger(signal) || signal < 0 || signal > 64) invalid(`signal ${signal} is out of range`);
    return signal;
  }
  const n = (osConstants.signals as Record<string, number | undefined>)[signal];
  if (n === undefined) invalid(`unknown signal ${JSON.stringify(signal)}`);
  return n;
}
