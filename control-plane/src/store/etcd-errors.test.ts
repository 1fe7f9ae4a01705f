import { GroveError } from "@grove/api";
import { GRPCDeadlineExceededError, GRPCUnavailableError, EtcdError } from "etcd3";
import { conflict, isConnectivityError, mapEtcdError } from "./etcd-errors";

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
    const err = new EtcdError("etcdserver: mvcc: database space exceeded");
    expect(isConnectivityError(err)).toBe(false);
    expect(mapEtcdError(err, endpoints).code).toBe("Internal");
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
