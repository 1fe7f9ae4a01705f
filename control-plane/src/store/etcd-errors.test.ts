import { GroveError } from "@grove/api";
import {
  GRPCDeadlineExceededError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
  EtcdError,
} from "etcd3";
import { conflict, isConnectivityError, isMessageTooLarge, mapEtcdError } from "./etcd-errors";

const endpoints = ["http://127.0.0.1:2379"];

describe("mapEtcdError", () => {
  test.each([
    ["unavailable", new GRPCUnavailableError("14 UNAVAILABLE: No connection established")],
    ["deadline", new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED: Deadline exceeded")],
    ["connection refused", new Error("connect ECONNREFUSED 127.0.0.1:2379")],
    ["grpc code 14", Object.assign(new Error("whatever"), { code: 14 })],
    ["etcd timeout", new EtcdError("etcdserver: request timed out")],
  ])("%s -> StoreUnavailable naming the endpoints", (_name, err) => {
    expect(isConnectivityError(err)).toBe(true);
    const mapped = mapEtcdError(err, endpoints);
    expect(mapped).toBeInstanceOf(GroveError);
    expect(mapped.code).toBe("StoreUnavailable");
    expect(mapped.status).toBe(503);
    expect(mapped.message).toBe(
      `the control plane's store (etcd at http://127.0.0.1:2379) is unreachable: ${err.message}`,
    );
  });

  test("other etcd errors become Internal", () => {
    const err = new EtcdError("etcdserver: too many operations in txn request");
    expect(isConnectivityError(err)).toBe(false);
    expect(mapEtcdError(err, endpoints).code).toBe("Internal");
  });

  test("NOSPACE (etcd out of space) is StoreOutOfSpace (503), saying what still works and where the runbook is", () => {
    const err = new EtcdError("etcdserver: mvcc: database space exceeded");
    expect(isConnectivityError(err)).toBe(false);
    const mapped = mapEtcdError(err, endpoints);
    expect(mapped.code).toBe("StoreOutOfSpace");
    expect(mapped.status).toBe(503);
    expect(mapped.message).toMatch(/out of space .*reads and deletes still work.*database space exceeded/);
    expect(mapped.message).toContain("docs/operations.md");
  });

  test("a compacted or future revision is Gone (410)", () => {
    const compacted = mapEtcdError(
      new GRPCOutOfRangeError("11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted"),
      endpoints,
    );
    expect(compacted.code).toBe("Gone");
    expect(compacted.status).toBe(410);
    expect(compacted.message).toMatch(/compacted/);
    const future = mapEtcdError(
      new GRPCOutOfRangeError("11 OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision"),
      endpoints,
    );
    expect(future.code).toBe("Gone");
  });

  test("a response over the client's message limit is recognised (a smaller page will do)", () => {
    const err = new GRPCResourceExhastedError(
      "8 RESOURCE_EXHAUSTED: Received message larger than max (5242880 vs 4194304)",
    );
    expect(isMessageTooLarge(err)).toBe(true);
    expect(isMessageTooLarge(new GRPCUnavailableError("14 UNAVAILABLE"))).toBe(false);
  });

  test("GroveErrors pass through", () => {
    const err = conflict("/grove/apps/a", "3", "5");
    expect(mapEtcdError(err, endpoints)).toBe(err);
    expect(err.code).toBe("Conflict");
    expect(err.message).toMatch(/modified.*re-read it and retry/);
  });

  test("non-errors are Internal", () => {
    expect(isConnectivityError("ECONNREFUSED")).toBe(false);
    expect(mapEtcdError("boom", endpoints).code).toBe("Internal");
  });
});
